"""Numbers as speech-to-text writes them: digit groups and number words in English, German and
French, turned into runs of digit chunks that keep their character spans in the transcript."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@functools.lru_cache(maxsize=8192)
def normalize_word(word: str) -> str:
    """Case-folded, accents stripped ("Fünf" -> "funf", "zéro" -> "zero", "dreißig" -> "dreissig")."""

    if word.isascii():
        return word.lower()
    decomposed = unicodedata.normalize("NFD", word.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


@dataclass(frozen=True, slots=True)
class Lexicon:
    words: dict[str, str]  # single normalised word -> digits
    compounds: dict[str, str]  # normalised words joined by "-" -> digits
    multipliers: dict[str, int]  # "double" -> 2
    fillers: frozenset[str]
    months: dict[str, int]
    compound_heads: frozenset[str] = field(default=frozenset())
    max_compound: int = 1


def _english() -> tuple[dict[str, str], dict[str, str]]:
    units = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    teens = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
             "eighteen", "nineteen"]  # fmt: skip
    tens = {20: "twenty", 30: "thirty", 40: "forty", 50: "fifty", 60: "sixty", 70: "seventy",
            80: "eighty", 90: "ninety"}  # fmt: skip
    words = {w: str(i) for i, w in enumerate(units)}
    words.update({"oh": "0", "o": "0", "nought": "0", "nil": "0", "fourty": "40"})
    words.update({w: str(10 + i) for i, w in enumerate(teens)})
    words.update({w: str(v) for v, w in tens.items()})
    compounds: dict[str, str] = {}
    for value, word in tens.items():
        for unit in range(1, 10):
            compounds[f"{word}-{units[unit]}"] = str(value + unit)
    below_hundred = {**{w: int(v) for w, v in words.items() if w not in ("oh", "o", "nought", "nil")},
                     **{k: int(v) for k, v in compounds.items()}}  # fmt: skip
    for key, value in below_hundred.items():
        if value:
            compounds[f"two-thousand-{key}"] = f"20{value:02d}"
            compounds[f"two-thousand-and-{key}"] = f"20{value:02d}"
    return words, compounds


def _german() -> tuple[dict[str, str], dict[str, str]]:
    units = {"eins": 1, "zwei": 2, "zwo": 2, "drei": 3, "vier": 4, "funf": 5, "fuenf": 5, "sechs": 6,
             "sieben": 7, "acht": 8, "neun": 9}  # fmt: skip
    in_compounds = {"ein": 1, "zwei": 2, "drei": 3, "vier": 4, "funf": 5, "fuenf": 5, "sechs": 6,
                    "sieben": 7, "acht": 8, "neun": 9}  # fmt: skip
    teens = {"zehn": 10, "elf": 11, "zwolf": 12, "zwoelf": 12, "dreizehn": 13, "vierzehn": 14,
             "funfzehn": 15, "fuenfzehn": 15, "sechzehn": 16, "siebzehn": 17, "achtzehn": 18,
             "neunzehn": 19}  # fmt: skip
    tens = {"zwanzig": 20, "dreissig": 30, "dreisig": 30, "vierzig": 40, "funfzig": 50, "fuenfzig": 50,
            "sechzig": 60, "siebzig": 70, "achtzig": 80, "neunzig": 90}  # fmt: skip
    words = {"null": "0", **{w: str(v) for w, v in {**units, **teens, **tens}.items()}}
    compounds: dict[str, str] = {}
    below_hundred: dict[str, int] = {**units, **teens, **tens}
    for tens_word, tens_value in tens.items():
        for unit_word, unit_value in in_compounds.items():
            value = str(tens_value + unit_value)
            words[f"{unit_word}und{tens_word}"] = value  # "einundzwanzig"
            compounds[f"{unit_word}-und-{tens_word}"] = value  # "ein und zwanzig", "ein-und-zwanzig"
            below_hundred[f"{unit_word}und{tens_word}"] = tens_value + unit_value
    for key, number in below_hundred.items():
        if key == "zwo":
            continue
        year = f"20{number:02d}"
        words[f"zweitausend{key}"] = year  # "zweitausendsiebenundzwanzig"
        compounds[f"zweitausend-{key}"] = year
        compounds[f"zwei-tausend-{key}"] = year
    return words, compounds


def _french() -> tuple[dict[str, str], dict[str, str]]:
    units = ["zero", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"]
    teens = ["dix", "onze", "douze", "treize", "quatorze", "quinze", "seize"]
    words = {w: str(i) for i, w in enumerate(units)}
    words.update({w: str(10 + i) for i, w in enumerate(teens)})
    tens = {"vingt": 20, "trente": 30, "quarante": 40, "cinquante": 50, "soixante": 60,
            "septante": 70, "huitante": 80, "octante": 80, "nonante": 90}  # fmt: skip
    words.update({w: str(v) for w, v in tens.items()})
    compounds: dict[str, str] = {"dix-sept": "17", "dix-huit": "18", "dix-neuf": "19",
                                 "quatre-vingt": "80", "quatre-vingts": "80"}  # fmt: skip
    below_twenty = {**{w: i for i, w in enumerate(units)}, **{w: 10 + i for i, w in enumerate(teens)},
                    "dix-sept": 17, "dix-huit": 18, "dix-neuf": 19}  # fmt: skip

    def add_tens(prefix: str, base: int, span: int) -> None:
        for key, value in below_twenty.items():
            if value == 0 or value >= span:
                continue
            if value in (1, 11):
                compounds[f"{prefix}-et-{key}"] = str(base + value)  # vingt-et-un, soixante-et-onze
                if base == 80:
                    compounds[f"{prefix}-{key}"] = str(base + value)  # quatre-vingt-un, -onze
            else:
                compounds[f"{prefix}-{key}"] = str(base + value)

    for word, value in tens.items():
        add_tens(word, value, 10)
    add_tens("soixante", 60, 20)  # soixante-dix .. soixante-dix-neuf
    add_tens("quatre-vingt", 80, 20)  # quatre-vingt-un .. quatre-vingt-dix-neuf
    compounds["soixante-dix"] = "70"
    compounds["quatre-vingt-dix"] = "90"
    below_hundred = {**{k: int(v) for k, v in words.items()}, **{k: int(v) for k, v in compounds.items()}}
    for key, value in below_hundred.items():
        if value:
            compounds[f"deux-mille-{key}"] = f"20{value:02d}"
    return words, compounds


_MONTHS = {
    "en": {"january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
           "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9,
           "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12,
           "dec": 12},
    "de": {"januar": 1, "janner": 1, "februar": 2, "feber": 2, "marz": 3, "maerz": 3, "april": 4,
           "mai": 5, "juni": 6, "juli": 7, "august": 8, "september": 9, "oktober": 10, "november": 11,
           "dezember": 12},
    "fr": {"janvier": 1, "fevrier": 2, "mars": 3, "avril": 4, "mai": 5, "juin": 6, "juillet": 7,
           "aout": 8, "septembre": 9, "octobre": 10, "novembre": 11, "decembre": 12},
}  # fmt: skip
_MULTIPLIERS = {
    "en": {"double": 2, "triple": 3, "treble": 3},
    "de": {"doppel": 2, "doppelt": 2, "doppelte": 2, "doppelter": 2, "dreifach": 3},
    "fr": {"double": 2, "triple": 3},
}
_FILLERS = {
    "en": {"uh", "um", "uhm", "erm", "er", "hmm"},
    "de": {"ah", "ahm", "oh", "ehm", "hm"},
    "fr": {"euh", "heu", "hum", "bah"},
}
_BUILDERS = {"en": _english, "de": _german, "fr": _french}
LANGUAGES = tuple(_BUILDERS)


def _build(languages: Iterable[str]) -> Lexicon:
    words: dict[str, str] = {}
    compounds: dict[str, str] = {}
    multipliers: dict[str, int] = {}
    fillers: set[str] = set()
    months: dict[str, int] = {}
    for language in languages:
        w, c = _BUILDERS[language]()
        words.update(w)
        compounds.update(c)
        multipliers.update(_MULTIPLIERS[language])
        fillers.update(_FILLERS[language])
    for language in LANGUAGES:  # month names are recognised in every language
        months.update(_MONTHS[language])
    fillers -= set(words)  # German "oh" is a filler, English "oh" is zero
    heads = frozenset(key.split("-", 1)[0] for key in compounds)
    return Lexicon(
        words=words,
        compounds=compounds,
        multipliers=multipliers,
        fillers=frozenset(fillers),
        months=months,
        compound_heads=heads,
        max_compound=max((key.count("-") + 1 for key in compounds), default=1),
    )


_LEXICONS: dict[str | None, Lexicon] = {None: _build(LANGUAGES)}
for _language in LANGUAGES:
    _LEXICONS[_language] = _build([_language])


def lexicon_for(language: str | None) -> Lexicon:
    """`language` is a BCP 47 tag ("de", "de-DE", "fr_FR"); None or an unknown language: all."""

    if language is None:
        return _LEXICONS[None]
    primary = language.replace("_", "-").split("-", 1)[0].casefold()
    return _LEXICONS.get(primary, _LEXICONS[None])


# ---------------------------------------------------------------------------------------------
# Runs of number chunks

_TOKEN = re.compile(r"\d+|[^\W\d_]+")
# Text allowed between two chunks of one number: spaces, commas, dots, dashes, slashes.
_RUN_GAP = re.compile(r"[\s,.\-/\u2010-\u2015]{0,6}")
# Text allowed between the words of one compound ("quatre-vingt-dix", "twenty one").
_COMPOUND_GAP = re.compile(r"[ \t\-\u2010\u2011]{1,3}")
_MONTH_GAP = re.compile(r"[\s,'\u2019]{1,4}")
_LETTER_GAP = re.compile(r"[ ,.\-]{1,3}")


@dataclass(frozen=True, slots=True)
class Chunk:
    digits: str
    start: int
    end: int
    written: bool  # digits as digits (not words)
    gap_before: str  # separator text between the previous chunk of the run and this one


@dataclass(frozen=True, slots=True)
class Run:
    chunks: tuple[Chunk, ...]
    plus_before: bool  # "+49 ..." - an international phone number, never a card start
    month_before: tuple[int, int] | None  # (start offset, month) of a month name just before
    letters_before: tuple[int, str] | None  # (start offset, "DE") of spelled letters just before


@dataclass(frozen=True, slots=True)
class _Token:
    start: int
    end: int
    text: str
    norm: str
    is_digits: bool


def _tokens(text: str, start: int, end: int) -> list[_Token]:
    tokens = []
    for match in _TOKEN.finditer(text, start, end):
        word = match.group()
        digits = word[0].isdigit()
        tokens.append(
            _Token(match.start(), match.end(), word, word if digits else normalize_word(word), digits)
        )
    return tokens


def _parse_number(text: str, tokens: Sequence[_Token], i: int, lex: Lexicon) -> tuple[str, int] | None:
    """Digits and token count of the number word(s) at `i`, or None."""

    token = tokens[i]
    if token.is_digits:
        return token.text, 1
    if token.norm in lex.compound_heads:
        parts = [token.norm]
        best: tuple[str, int] | None = None
        j = i
        while len(parts) < lex.max_compound and j + 1 < len(tokens):
            nxt = tokens[j + 1]
            if nxt.is_digits or not _COMPOUND_GAP.fullmatch(text, tokens[j].end, nxt.start):
                break
            parts.append(nxt.norm)
            j += 1
            value = lex.compounds.get("-".join(parts))
            if value is not None:
                best = (value, j - i + 1)
        if best is not None:
            return best
    value = lex.words.get(token.norm)
    if value is not None:
        return value, 1
    factor = lex.multipliers.get(token.norm)
    if factor and i + 1 < len(tokens) and _COMPOUND_GAP.fullmatch(text, token.end, tokens[i + 1].start):
        following = _parse_number(text, tokens, i + 1, lex)
        if (
            following is not None
            and len(following[0]) == 1
            and lex.multipliers.get(tokens[i + 1].norm) is None
        ):
            return following[0] * factor, 1 + following[1]
    return None


def find_runs(text: str, pieces: Iterable[tuple[int, int]], lex: Lexicon) -> list[Run]:
    """Runs of number chunks inside each (start, end) piece of `text` (pieces are the text between
    spans already redacted, so a run never crosses a redaction)."""

    runs: list[Run] = []
    for piece_start, piece_end in pieces:
        _runs_in_piece(text, piece_start, piece_end, lex, runs)
    return runs


def _runs_in_piece(text: str, piece_start: int, piece_end: int, lex: Lexicon, runs: list[Run]) -> None:
    tokens = _tokens(text, piece_start, piece_end)
    chunks: list[Chunk] = []
    previous_word: list[_Token] = []  # the last two non-number tokens before a run
    i = 0
    last_end = -1

    def close() -> None:
        if chunks:
            runs.append(_make_run(text, tuple(chunks), previous_word, lex))
            chunks.clear()

    while i < len(tokens):
        token = tokens[i]
        parsed = _parse_number(text, tokens, i, lex)
        if parsed is None:
            if token.norm in lex.fillers and chunks:
                i += 1
                continue
            close()
            previous_word = [*previous_word[-1:], token]
            i += 1
            continue
        digits, used = parsed
        end = tokens[i + used - 1].end
        if chunks and not _RUN_GAP.fullmatch(_strip_fillers(text[last_end : token.start], lex)):
            close()
            previous_word = []
        gap_before = text[last_end : token.start] if chunks else ""
        chunks.append(Chunk(digits, token.start, end, token.is_digits, gap_before))
        last_end = end
        i += used
    close()


def _strip_fillers(gap: str, lex: Lexicon) -> str:
    if gap.isascii() and not any(c.isalpha() for c in gap):
        return gap
    return "".join(" " if normalize_word(t.group()) in lex.fillers else t.group()
                   for t in re.finditer(r"[^\W\d_]+|[\W\d_]+", gap))  # fmt: skip


def _make_run(text: str, chunks: tuple[Chunk, ...], before: list[_Token], lex: Lexicon) -> Run:
    first = chunks[0].start
    head = text[max(0, first - 3) : first].rstrip()
    plus_before = head.endswith("+")
    month_before = None
    letters_before = None
    if before:
        last = before[-1]
        if _MONTH_GAP.fullmatch(text, last.end, first) and last.norm in lex.months:
            month_before = (last.start, lex.months[last.norm])
        if _LETTER_GAP.fullmatch(text, last.end, first) or last.end == first:
            if len(last.text) == 2 and last.text.isascii() and last.text.isupper():
                letters_before = (last.start, last.text)
            elif (
                len(before) == 2
                and len(last.text) == 1
                and len(before[0].text) == 1
                and _LETTER_GAP.fullmatch(text, before[0].end, last.start)
                and (before[0].text + last.text).isascii()
                and (before[0].text + last.text).isalpha()
            ):
                letters_before = (before[0].start, (before[0].text + last.text).upper())
    return Run(chunks, plus_before, month_before, letters_before)
