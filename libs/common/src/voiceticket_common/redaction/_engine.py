"""The redaction passes; see the package docstring for what is detected."""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from . import _checks
from ._custom import MAX_PATTERNS, RedactionConfigError, compile_tenant_pattern, windowed_matches
from ._numbers import Chunk, Lexicon, Run, find_runs, lexicon_for, normalize_word

PAYMENT_CARD = "payment_card"
CARD_SECURITY_CODE = "card_security_code"
CARD_EXPIRY = "card_expiry"
IBAN = "iban"
US_SSN = "us_ssn"
UK_NINO = "uk_nino"
DE_TAX_ID = "de_tax_id"
DE_ID_CARD = "de_id_card"
FR_NIR = "fr_nir"
EMAIL = "email"
PHONE_NUMBER = "phone_number"

LABELS: Mapping[str, str] = MappingProxyType(
    {
        PAYMENT_CARD: "payment card",
        CARD_SECURITY_CODE: "card security code",
        CARD_EXPIRY: "card expiry date",
        IBAN: "IBAN",
        US_SSN: "US social security number",
        UK_NINO: "UK national insurance number",
        DE_TAX_ID: "German tax ID",
        DE_ID_CARD: "German ID card number",
        FR_NIR: "French social security number",
        EMAIL: "email address",
        PHONE_NUMBER: "phone number",
    }
)
BUILTIN_KINDS = frozenset(LABELS)

# Anything already shaped like a placeholder is left alone, never matched and never a keyword.
_PLACEHOLDER = re.compile(r"\[redacted: [^\[\]\n]{1,60}\]")
DEFAULT_MAX_INPUT_CHARS = 500_000


def placeholder(kind: str) -> str:
    return f"[redacted: {LABELS.get(kind, kind.replace('_', ' '))}]"


class RedactionInputTooLarge(ValueError):
    """The text is longer than the policy's max_input_chars; nothing may be sent unredacted."""


@dataclass(frozen=True, slots=True)
class CustomPattern:
    """A tenant-defined kind: every match of `pattern` becomes "[redacted: <kind>]"."""

    kind: str
    pattern: str
    compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind in BUILTIN_KINDS:
            raise RedactionConfigError(
                f"redaction pattern kind {self.kind!r} is a built-in kind; pick another name"
            )
        object.__setattr__(self, "compiled", compile_tenant_pattern(self.kind, self.pattern))


@dataclass(frozen=True, slots=True)
class RedactionPolicy:
    payment_cards: bool = True
    card_details: bool = True  # security codes and expiry dates near a card or a keyword
    ibans: bool = True
    national_ids: bool = True
    emails: bool = False
    phone_numbers: bool = False
    custom_patterns: tuple[CustomPattern, ...] = ()
    context_window: int = 80  # characters after a card/keyword (half of it before) for codes/dates
    max_input_chars: int = DEFAULT_MAX_INPUT_CHARS

    def __post_init__(self) -> None:
        if not 10 <= self.context_window <= 500:
            raise RedactionConfigError("redaction context_window must be between 10 and 500 characters")
        if self.max_input_chars < 1:
            raise RedactionConfigError("redaction max_input_chars must be positive")
        if len(self.custom_patterns) > MAX_PATTERNS:
            raise RedactionConfigError(f"at most {MAX_PATTERNS} redaction patterns per tenant")
        kinds = [p.kind for p in self.custom_patterns]
        if len(set(kinds)) != len(kinds):
            raise RedactionConfigError("redaction pattern kinds must be unique")

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> RedactionPolicy:
        """From tenant configuration, e.g. {"phone_numbers": true, "custom_patterns":
        [{"kind": "contract_number", "pattern": "\\\\bVT-\\\\d{6}\\\\b"}]}."""

        allowed = {"payment_cards", "card_details", "ibans", "national_ids", "emails", "phone_numbers",
                   "custom_patterns", "context_window", "max_input_chars"}  # fmt: skip
        unknown = sorted(set(config) - allowed)
        if unknown:
            raise RedactionConfigError(f"unknown redaction settings: {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for key in ("payment_cards", "card_details", "ibans", "national_ids", "emails", "phone_numbers"):
            if key in config:
                if not isinstance(config[key], bool):
                    raise RedactionConfigError(f"redaction setting {key} must be true or false")
                values[key] = config[key]
        for key in ("context_window", "max_input_chars"):
            if key in config:
                if not isinstance(config[key], int) or isinstance(config[key], bool):
                    raise RedactionConfigError(f"redaction setting {key} must be an integer")
                values[key] = config[key]
        patterns = []
        for entry in config.get("custom_patterns", ()):
            if not isinstance(entry, Mapping) or set(entry) != {"kind", "pattern"}:
                raise RedactionConfigError('each redaction pattern is {"kind": ..., "pattern": ...}')
            patterns.append(CustomPattern(entry["kind"], entry["pattern"]))
        return cls(custom_patterns=tuple(patterns), **values)


@dataclass(frozen=True, slots=True)
class Redaction:
    """The redacted text and how many of each kind were replaced. No values, no offsets."""

    text: str
    counts: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def record(self) -> dict[str, int]:
        """The counts as a plain dict (for the Jira issue property)."""

        return dict(self.counts)


# ---------------------------------------------------------------------------------------------
# Keywords


def _keyword_regex(phrases: Iterable[str]) -> str:
    variants = {"ü": "(?:ü|ue|u)", "ä": "(?:ä|ae|a)", "ö": "(?:ö|oe|o)", "ß": "(?:ß|ss)", "é": "[ée]",
                "è": "[èe]", "ê": "[êe]", "à": "[àa]", "û": "[ûu]", "ç": "[çc]", "'": "['’ ]?\\s?",
                " ": "[\\s-]+", "-": "[\\s-]?"}  # fmt: skip
    alternatives = sorted(set(phrases), key=len, reverse=True)
    return "|".join("".join(variants.get(c, re.escape(c)) for c in phrase) for phrase in alternatives)


_KEYWORDS = {
    "cvv": [
        "cvv", "cvv2", "cvc", "cvc2", "cvn", "csc", "security code", "security number", "verification code",
        "verification number", "card verification", "three digit code", "3 digit code", "digits on the back",
        "code on the back", "number on the back",
        "prüfnummer", "kartenprüfnummer", "prüfziffer", "prüfziffern", "kartenprüfziffer", "prüfcode",
        "sicherheitscode", "sicherheitsnummer", "sicherheitsziffer", "sicherheitsziffern", "dreistellige code",
        "dreistelliger code", "drei ziffern",
        "cryptogramme", "cryptogramme visuel", "code de sécurité", "code de vérification", "code au dos",
        "numéro au dos", "chiffres au dos", "code à trois chiffres",
    ],
    "expiry": [
        "expiry", "expiry date", "expires", "expire", "expired", "expiring", "expiration", "exp", "exp date",
        "valid until", "valid till", "valid thru", "valid through", "good thru", "good through", "end date",
        "gültig bis", "gültigkeit", "gültigkeitsdatum", "ablauf", "ablaufdatum", "läuft ab", "verfallsdatum",
        "verfällt", "gültig",
        "date d'expiration", "expiration", "expire", "valable jusqu'à", "valable jusqu'au", "fin de validité",
        "date de validité", "date de fin",
    ],
    "ssn": ["social security", "social security number", "ssn", "social"],
    "de_tax_id": [
        "steuer id", "steuer-id", "steuerid", "steueridentifikationsnummer", "steuerliche identifikationsnummer",
        "identifikationsnummer", "idnr", "id nummer", "steuernummer", "tax id", "tax identification",
    ],
    "de_id_card": [
        "personalausweis", "personalausweisnummer", "ausweisnummer", "ausweis", "ausweises", "id card",
        "identity card", "ausweis nummer", "seriennummer",
    ],
}  # fmt: skip
_KEYWORD = re.compile(
    "|".join(f"(?P<{group}>{_keyword_regex(phrases)})" for group, phrases in _KEYWORDS.items()).join(
        (r"(?<![^\W_])(?:", r")(?![^\W_])")
    ),
    re.IGNORECASE,
)

_FOLD = str.maketrans({"ü": "u", "ä": "a", "ö": "o", "ß": "s"})


def _keyword_prefixes() -> frozenset[str]:
    prefixes = set()
    for phrases in _KEYWORDS.values():
        for phrase in phrases:
            head = re.split(r"[ '\-]", phrase.casefold(), maxsplit=1)[0]
            for variant in (head, head.replace("ü", "ue").replace("ä", "ae").replace("ö", "oe")):
                prefixes.add(normalize_word(variant.translate(_FOLD))[:3])
    return frozenset(prefixes)


_KEYWORD_PREFIXES = _keyword_prefixes()
_WORD_START = re.compile(r"(?<![^\W_])[^\W\d_]{1,3}")


def _keywords(text: str) -> Iterator[re.Match[str]]:
    """_KEYWORD matches, tried only where a word starts with a keyword's first letters (one big
    alternation tried at every position is the slowest part of a pass otherwise)."""

    position = 0
    for word in _WORD_START.finditer(text):
        if word.start() < position or normalize_word(word.group()).translate(_FOLD) not in _KEYWORD_PREFIXES:
            continue
        match = _KEYWORD.match(text, word.start())
        if match is not None:
            position = match.end()
            yield match


# ---------------------------------------------------------------------------------------------
# Text-level patterns

_EMAIL = re.compile(r"(?<![\w.+%-])[\w.+%-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){0,8}\.[^\W\d_]{2,24}(?![\w-])")
_IBAN_START = re.compile(r"(?<![^\W_])([A-Za-z])[ ]?([A-Za-z])[ ]?(?=\d)")
_UK_NINO = re.compile(
    r"(?<![^\W_])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![^\W_])",
    re.IGNORECASE,
)
_DE_ID_CARD = re.compile(r"(?<![^\W_])([CFGHJKLMNPRTVWXYZ][CFGHJKLMNPRTVWXYZ0-9]{8}) ?(\d)(?![^\W_])")
_FR_NIR_CORSICA = re.compile(
    r"(?<![^\W_])([1278]) ?(\d{2}) ?(\d{2}) ?(2[AB]) ?(\d{3}) ?(\d{3}) ?(\d{2})(?![^\W_])", re.IGNORECASE
)
_US_SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
_PHONE = re.compile(
    r"""(?<![\w+])(?:
        (?:\+|00)[1-9]\d{0,2}(?:[ .\-/]?\(?\d{1,5}\)?){2,6}   # E.164 / international, with separators
      | \(?0\d{1,5}\)?(?:[ .\-/]?\d{2,8}){1,5}              # national with a trunk 0 (DE, FR, UK, ...)
      | \(?\d{3}\)?[ .\-]\d{3}[ .\-]\d{4}                    # North American
    )(?![\w])""",
    re.VERBOSE,
)


class _Spans:
    """Non-overlapping (start, end, kind) spans; kind None marks text to keep (placeholders)."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.items: list[tuple[int, int, str | None]] = []

    def free(self, start: int, end: int) -> bool:
        index = bisect.bisect_right(self.starts, start)
        if index and self.items[index - 1][1] > start:
            return False
        return index == len(self.items) or self.items[index][0] >= end

    def add(self, start: int, end: int, kind: str | None) -> bool:
        if end <= start or not self.free(start, end):
            return False
        index = bisect.bisect_right(self.starts, start)
        self.starts.insert(index, start)
        self.items.insert(index, (start, end, kind))
        return True

    def pieces(self, length: int) -> list[tuple[int, int]]:
        out = []
        position = 0
        for start, end, _ in self.items:
            if start > position:
                out.append((position, start))
            position = max(position, end)
        if position < length:
            out.append((position, length))
        return out


class _Triggers:
    """Card spans and keyword matches by group ("card", "cvv", "expiry", "ssn", ...), sorted; the
    spans of one group never overlap, so their starts and ends are both in order."""

    def __init__(self) -> None:
        self.starts: dict[str, list[int]] = {}
        self.ends: dict[str, list[int]] = {}

    def add(self, start: int, end: int, group: str) -> None:
        starts = self.starts.setdefault(group, [])
        ends = self.ends.setdefault(group, [])
        index = bisect.bisect_left(starts, start)
        starts.insert(index, start)
        ends.insert(index, end)

    def distance(self, start: int, end: int, window: int, group: str) -> int | None:
        """Distance from the span to the nearest `group` trigger within `window` characters
        before the span (or, for keywords, window // 2 after it: "123 is the CVV"), or None."""

        starts = self.starts.get(group)
        if not starts:
            return None
        ends = self.ends[group]
        best: int | None = None
        before = bisect.bisect_right(ends, start) - 1  # last trigger ending at or before the span
        if before >= 0 and start - ends[before] <= window:
            best = start - ends[before]
        if before + 1 < len(starts) and starts[before + 1] < end:
            return 0  # overlapping
        after = bisect.bisect_left(starts, end)
        if group != "card" and after < len(starts) and starts[after] - end <= window // 2:
            distance = starts[after] - end
            best = distance if best is None else min(best, distance)
        return best

    def near(self, start: int, end: int, window: int, group: str) -> bool:
        return self.distance(start, end, window, group) is not None


_Segment = tuple[Run, int, int]  # run, first chunk, end chunk (exclusive)


def _windows(
    chunks: tuple[Chunk, ...],
    lo: int,
    hi: int,
    lengths: tuple[int, int],
    accept: Callable[[str, int, int], bool],
) -> list[tuple[int, int, int]]:
    """Merged regions (first, last chunk inclusive, count) of chunk-aligned windows whose digits
    have a length in `lengths` and pass `accept`; overlapping valid windows are merged so that no
    part of a candidate survives, and the count is how many disjoint windows the region holds."""

    cum = [0]
    for chunk in chunks[lo:hi]:
        cum.append(cum[-1] + len(chunk.digits))
    if cum[-1] < lengths[0]:
        return []
    flat = "".join(chunk.digits for chunk in chunks[lo:hi])
    shortest, longest = lengths
    found: list[tuple[int, int]] = []
    for i in range(hi - lo):
        base = cum[i]
        for j in range(i, hi - lo):
            size = cum[j + 1] - base
            if size > longest:
                break
            if size >= shortest and accept(flat[base : base + size], lo + i, lo + j):
                found.append((lo + i, lo + j))
    regions: list[tuple[int, int, int]] = []
    group: list[tuple[int, int]] = []
    for window in found + [(hi + 1, hi + 1)]:
        if group and window[0] > max(j for _, j in group):
            count, last_end = 0, -1
            for i, j in sorted(group, key=lambda w: w[1]):
                if i > last_end:
                    count, last_end = count + 1, j
            regions.append((min(i for i, _ in group), max(j for _, j in group), count))
            group = []
        group.append(window)
    return regions


def _split(segments: list[_Segment], run: Run, lo: int, hi: int, regions: list[tuple[int, int, int]]) -> None:
    position = lo
    for first, last, _ in regions:
        if first > position:
            segments.append((run, position, first))
        position = last + 1
    if position < hi:
        segments.append((run, position, hi))


def _digits(run: Run, lo: int, hi: int) -> str:
    return "".join(chunk.digits for chunk in run.chunks[lo:hi])


class Redactor:
    """Compiled once per policy; `redact` is pure and thread-safe."""

    def __init__(self, policy: RedactionPolicy | None = None) -> None:
        self.policy = policy or RedactionPolicy()

    def redact(self, text: str, language: str | None = None) -> Redaction:
        """Redact `text`. `language` (BCP 47, e.g. "de-DE") selects which number words are read;
        None reads English, German and French. Raises RedactionInputTooLarge above the policy limit."""

        if len(text) > self.policy.max_input_chars:
            raise RedactionInputTooLarge(
                f"transcript of {len(text)} characters exceeds the redaction limit of {self.policy.max_input_chars}"
            )
        lexicon = lexicon_for(language)
        counts: dict[str, int] = {}
        # Repeat until nothing more is found, so that redact(redact(x).text) == redact(x).text:
        # every pass replaces at least one digit-bearing token, so this ends (in practice after 2).
        while True:
            text, found = self._pass(text, lexicon)
            if not found:
                break
            for kind, count in found.items():
                counts[kind] = counts.get(kind, 0) + count
        return Redaction(text=text, counts=MappingProxyType(dict(sorted(counts.items()))))

    # -----------------------------------------------------------------------------------------

    def _pass(self, text: str, lexicon: Lexicon) -> tuple[str, dict[str, int]]:
        policy = self.policy
        spans = _Spans()
        counts: dict[str, int] = {}

        def take(start: int, end: int, kind: str, count: int = 1) -> bool:
            if spans.add(start, end, kind):
                counts[kind] = counts.get(kind, 0) + count
                return True
            return False

        for match in _PLACEHOLDER.finditer(text):
            spans.add(match.start(), match.end(), None)
        triggers = _Triggers()
        for m in _keywords(text):
            if spans.free(m.start(), m.end()):
                triggers.add(m.start(), m.end(), m.lastgroup or "")

        for custom in policy.custom_patterns:
            for start, end in windowed_matches(custom.compiled, text, 0, len(text)):
                take(start, end, custom.kind)
        if policy.emails:
            for m in _EMAIL.finditer(text):
                take(m.start(), m.end(), EMAIL)
        if policy.ibans:
            self._written_ibans(text, take)
        if policy.national_ids:
            self._written_ids(text, triggers, take)

        segments: list[_Segment] = []
        for run in find_runs(text, spans.pieces(len(text)), lexicon):
            segments.append((run, 0, len(run.chunks)))
        if policy.payment_cards:
            segments = self._cards(segments, triggers, take)
        if policy.ibans:
            segments = self._spoken_ibans(segments, take)
        if policy.national_ids:
            segments = self._run_ids(segments, triggers, take)
        if policy.card_details:
            self._card_details(segments, triggers, take)
        if policy.phone_numbers:
            for m in _PHONE.finditer(text):
                digits = sum(c.isdigit() for c in m.group())
                international = m.group()[0] == "+" or m.group().startswith("00")
                if (8 if international else 9) <= digits <= 15 or (m.group()[0] == "(" and digits == 10):
                    take(m.start(), m.end(), PHONE_NUMBER)
        if not counts:
            return text, counts
        out: list[str] = []
        position = 0
        for start, end, kind in spans.items:
            if kind is None:
                continue
            out.append(text[position:start])
            out.append(placeholder(kind))
            position = end
        out.append(text[position:])
        return "".join(out), counts

    @staticmethod
    def _written_ibans(text: str, take: Callable[..., bool]) -> None:
        for match in _IBAN_START.finditer(text):
            country = (match.group(1) + match.group(2)).upper()
            length = _checks.IBAN_LENGTHS.get(country)
            if length is None:
                continue
            collected = [country]
            position = match.end()
            need = length - 2
            end = position
            while need and position < len(text):
                char = text[position]
                if char.isascii() and char.isalnum():
                    collected.append(char.upper())
                    need -= 1
                    position += 1
                    end = position
                elif (
                    char in " -."
                    and position + 1 < len(text)
                    and text[position + 1].isalnum()
                    and end == position
                ):
                    position += 1
                else:
                    break
            if need or (end < len(text) and text[end].isalnum()):
                continue
            if _checks.iban_ok("".join(collected)):
                take(match.start(), end, IBAN)

    def _written_ids(self, text: str, triggers: _Triggers, take: Callable[..., bool]) -> None:
        window = self.policy.context_window
        for m in _UK_NINO.finditer(text):
            take(m.start(), m.end(), UK_NINO)
        for m in _FR_NIR_CORSICA.finditer(text):
            if _checks.fr_nir_ok("".join(m.groups()).upper()):
                take(m.start(), m.end(), FR_NIR)
        for m in _US_SSN.finditer(text):
            if _checks.us_ssn_ok(m.group(1) + m.group(3) + m.group(4)):
                take(m.start(), m.end(), US_SSN)
        for m in _DE_ID_CARD.finditer(text):
            body, check = m.group(1), m.group(2)
            if any(c.isdigit() for c in body) and _checks.icao_check_ok(body, check):
                if triggers.near(m.start(), m.end(), window, "de_id_card"):
                    take(m.start(), m.end(), DE_ID_CARD)

    @staticmethod
    def _cards(segments: list[_Segment], triggers: _Triggers, take: Callable[..., bool]) -> list[_Segment]:
        rest: list[_Segment] = []
        for run, lo, hi in segments:

            def accept(digits: str, i: int, _j: int, run: Run = run) -> bool:
                return not (i == 0 and run.plus_before) and _checks.is_card_number(digits)

            regions = _windows(run.chunks, lo, hi, (13, 19), accept)
            for first, last, count in regions:
                start, end = run.chunks[first].start, run.chunks[last].end
                if take(start, end, PAYMENT_CARD, count):
                    triggers.add(start, end, "card")
            _split(rest, run, lo, hi, regions)
        return rest

    @staticmethod
    def _spoken_ibans(segments: list[_Segment], take: Callable[..., bool]) -> list[_Segment]:
        rest: list[_Segment] = []
        for run, lo, hi in segments:
            if lo != 0 or run.letters_before is None:
                rest.append((run, lo, hi))
                continue
            letters_start, country = run.letters_before
            length = _checks.IBAN_LENGTHS.get(country, 0) - 2
            regions: list[tuple[int, int, int]] = []
            total = ""
            for j in range(hi):  # the IBAN starts at the run's first chunk
                total += run.chunks[j].digits
                if len(total) >= length:
                    if len(total) == length and _checks.iban_ok(country + total):
                        regions = [(0, j, 1)]
                    break
            for _first, last, _ in regions:
                take(letters_start, run.chunks[last].end, IBAN)
            _split(rest, run, lo, hi, regions)
        return rest

    def _run_ids(
        self, segments: list[_Segment], triggers: _Triggers, take: Callable[..., bool]
    ) -> list[_Segment]:
        window = self.policy.context_window

        def near(run: Run, i: int, j: int, group: str) -> bool:
            return triggers.near(run.chunks[i].start, run.chunks[j].end, window, group)

        def accept(kind: str, run: Run, lo: int, hi: int, digits: str, i: int, j: int) -> bool:
            if kind == FR_NIR:
                return not (i == 0 and run.plus_before) and _checks.fr_nir_ok(digits)
            if kind == DE_TAX_ID:
                whole = i == lo and j == hi - 1 and not run.plus_before
                return _checks.de_tax_id_ok(digits) and (whole or near(run, i, j, "de_tax_id"))
            return _checks.us_ssn_ok(digits) and near(run, i, j, "ssn")

        for kind, length in ((FR_NIR, 15), (DE_TAX_ID, 11), (US_SSN, 9)):
            rest: list[_Segment] = []
            for run, lo, hi in segments:
                regions = _windows(
                    run.chunks, lo, hi, (length, length), functools.partial(accept, kind, run, lo, hi)
                )
                for first, last, count in regions:
                    take(run.chunks[first].start, run.chunks[last].end, kind, count)
                _split(rest, run, lo, hi, regions)
            segments = rest
        return segments

    def _card_details(self, segments: list[_Segment], triggers: _Triggers, take: Callable[..., bool]) -> None:
        window = self.policy.context_window
        for run, lo, hi in segments:
            pieces = [(lo, hi)]
            if _shape(run, lo, hi) is None and 6 <= len(_digits(run, lo, hi)) <= 10:
                # "oh three twenty seven one two three": an expiry and a code said in one breath.
                for k in range(lo + 1, hi):
                    if _shape(run, lo, k, True) is not None and _shape(run, k, hi) is not None:
                        pieces = [(lo, k), (k, hi)]
                        break
            for a, b in pieces:
                shape = _shape(run, a, b, len(pieces) > 1 and a == lo)
                if shape is None:
                    continue
                start = run.month_before[0] if a == 0 and run.month_before else run.chunks[a].start
                end = run.chunks[b - 1].end
                near_card = triggers.near(start, end, window, "card")
                to_expiry = triggers.distance(start, end, window, "expiry")
                to_code = triggers.distance(start, end, window, "cvv")
                keyword = None
                if to_expiry is not None or to_code is not None:
                    keyword = (
                        "cvv"
                        if to_expiry is None or (to_code is not None and to_code < to_expiry)
                        else "expiry"
                    )
                strong, weak, code = shape
                if strong and (near_card or keyword):
                    kind = CARD_EXPIRY
                elif weak and keyword == "expiry":
                    kind = CARD_EXPIRY
                elif code and keyword == "cvv":
                    kind = CARD_SECURITY_CODE
                elif weak and near_card and b - a > 1:
                    kind = CARD_EXPIRY
                elif code and (near_card or keyword):
                    kind = CARD_SECURITY_CODE
                else:
                    continue
                take(start, end, kind)


def _shape(run: Run, lo: int, hi: int, in_breath: bool = False) -> tuple[bool, bool, bool] | None:
    """(strong expiry, weak expiry, security code) shape of the digits of chunks lo..hi, or None.
    Strong: a month name or a slash ("March 27", "03/27"); weak: MMYY/MMYYYY that splits after
    the month ("03 27", "oh three twenty seven", "0327"; with `in_breath`, when the digits are
    followed by a code in one run, also "nine twenty six"); code: 3 or 4 digits."""

    if hi <= lo:
        return None
    digits = _digits(run, lo, hi)
    boundaries = set()
    slash_at = set()
    total = 0
    for index in range(lo, hi):
        if index > lo and "/" in run.chunks[index].gap_before:
            slash_at.add(total)
        total += len(run.chunks[index].digits)
        boundaries.add(total)
    strong = weak = False
    if lo == 0 and run.month_before is not None:
        strong = len(digits) == 2 or (len(digits) == 4 and digits.startswith("20"))
    month_first = len(digits) >= 4 and "01" <= digits[:2] <= "12"
    if len(digits) == 4 and month_first or len(digits) == 6 and month_first and digits[2:4] == "20":
        if 2 in slash_at:
            strong = True
        elif 2 in boundaries or hi - lo == 1:
            weak = True
    if len(digits) == 3 and digits[0] != "0":
        if 1 in slash_at:
            strong = True  # "3/27"
        elif in_breath and 1 in boundaries and hi - lo > 1:
            weak = True  # "nine twenty six" followed by a code in the same breath
    if len(digits) == 5 and 1 in slash_at and digits[0] != "0" and digits[1:3] == "20":
        strong = True
    code = len(digits) in (3, 4)
    if not (strong or weak or code):
        return None
    return strong, weak, code
