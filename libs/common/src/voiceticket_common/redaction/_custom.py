"""Tenant-defined patterns: validated and compiled once, matched in bounded windows."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from typing import Any

_parser: Any = importlib.import_module("re._parser")
_constants: Any = importlib.import_module("re._constants")

KIND_NAME = re.compile(r"[a-z][a-z_]{0,47}")
MAX_PATTERN_CHARS = 1_000
MAX_PATTERNS = 64
# Tenant patterns run over windows of the transcript, so the cost of an unlucky pattern is bounded
# by the window, not by the transcript. A match up to WINDOW_OVERLAP characters long is always
# found; longer ones only when they fit inside one window.
WINDOW = 4_096
WINDOW_OVERLAP = 512


class RedactionConfigError(ValueError):
    """A redaction policy (usually tenant configuration) that cannot be used."""


def _nested_repeat(sub: Any, inside_variable_repeat: bool) -> bool:
    for op, av in sub:
        if op in (_constants.MAX_REPEAT, _constants.MIN_REPEAT):
            low, high, inner = av
            variable = high > 1 and high != low
            if variable and inside_variable_repeat:
                return True
            if _nested_repeat(inner, inside_variable_repeat or variable):
                return True
        elif op is getattr(_constants, "POSSESSIVE_REPEAT", None):
            if _nested_repeat(av[2], False):  # no backtracking into a possessive repeat
                return True
        elif op is getattr(_constants, "ATOMIC_GROUP", None):
            if _nested_repeat(av, False):
                return True
        elif op is _constants.SUBPATTERN:
            if _nested_repeat(av[3], inside_variable_repeat):
                return True
        elif op is _constants.BRANCH:
            if any(_nested_repeat(branch, inside_variable_repeat) for branch in av[1]):
                return True
        elif op in (_constants.ASSERT, _constants.ASSERT_NOT):
            if _nested_repeat(av[1], inside_variable_repeat):
                return True
        elif op is _constants.GROUPREF_EXISTS:
            if any(_nested_repeat(p, inside_variable_repeat) for p in av[1:] if p is not None):
                return True
    return False


def compile_tenant_pattern(kind: str, pattern: str) -> re.Pattern[str]:
    """Compile a tenant pattern or raise RedactionConfigError saying why it is refused."""

    if not isinstance(kind, str) or not KIND_NAME.fullmatch(kind):
        raise RedactionConfigError(
            f"redaction pattern kind {kind!r}: use 1-48 lower-case letters and underscores, starting with a letter"
        )
    if not isinstance(pattern, str) or not pattern:
        raise RedactionConfigError(f"redaction pattern {kind!r}: the pattern is empty")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise RedactionConfigError(f"redaction pattern {kind!r}: longer than {MAX_PATTERN_CHARS} characters")
    try:
        compiled = re.compile(pattern)
        parsed = _parser.parse(pattern)
    except (re.error, OverflowError, RecursionError) as exc:
        raise RedactionConfigError(
            f"redaction pattern {kind!r} is not a valid regular expression: {exc}"
        ) from exc
    if parsed.getwidth()[0] == 0:
        raise RedactionConfigError(f"redaction pattern {kind!r} can match empty text")
    if _nested_repeat(parsed, False):
        raise RedactionConfigError(
            f"redaction pattern {kind!r} nests a variable repetition inside another (like (a+)+), which "
            "can take exponential time; rewrite it, or make the inner part atomic ((?>...)) or possessive (a++)"
        )
    return compiled


def windowed_matches(pattern: re.Pattern[str], text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """(start, end) of matches of `pattern` in text[start:end], window by window. A match that ends
    exactly at a window's end may be cut short there, so it is only taken from the last window."""

    position = start
    while True:
        window_end = min(end, position + WINDOW)
        final = window_end == end
        for match in pattern.finditer(text, position, window_end):
            if match.end() == window_end and not final:
                continue
            if match.end() > match.start():
                yield match.start(), match.end()
        if final:
            return
        position = window_end - WINDOW_OVERLAP
