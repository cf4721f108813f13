"""The small part of JQL the Jira stand-in understands.

Supported: clauses joined by ``AND``, each one of ``issue.property[<key>].<path> = "<value>"``,
``project = KEY``, ``key = KEY-1`` / ``issuekey = ...``, ``key in (A-1, A-2)``,
``created >= -<N>d`` and ``text ~ "<words or \"phrase\">"`` (summary, description and comments,
case-insensitive); a trailing ``ORDER BY`` is accepted and ignored. Anything else raises ``JqlError`` (Jira answers 400).

Real Jira can only search a property path that an installed app indexes; the sandbox searches every
stored property, so it cannot catch a missing index.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from voiceticket_sandbox.state import Issue

_VALUE = r"""(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s()"',]+)"""
_PROPERTY = re.compile(
    r"^issue\.property\[(?P<key>[^\]]+)\]\.(?P<path>[\w.-]+)\s*=\s*" + _VALUE + r"$", re.IGNORECASE
)
_FIELD_EQ = re.compile(r"^(?P<field>project|key|issuekey)\s*=\s*" + _VALUE + r"$", re.IGNORECASE)
_KEY_IN = re.compile(r"^(?:key|issuekey)\s+in\s*\((?P<values>[^)]*)\)$", re.IGNORECASE)
_CREATED = re.compile(r"^created\s*>=\s*-(?P<days>\d+)d$", re.IGNORECASE)
_TEXT = re.compile(r"^text\s*~\s*" + _VALUE + r"$", re.IGNORECASE)
_ORDER_BY = re.compile(r"\s+order\s+by\s+.*$|^order\s+by\s+.*$", re.IGNORECASE | re.DOTALL)

Predicate = Callable[[Issue], bool]


class JqlError(ValueError):
    """The query uses JQL the sandbox does not support."""


def compile_jql(jql: str) -> Predicate:
    """A predicate over issues for ``jql``; raises JqlError for unsupported queries."""
    query = _ORDER_BY.sub("", jql.strip()).strip()
    if not query:
        raise JqlError("Unbounded JQL queries are not allowed here; add a restriction.")
    predicates = [_clause(part.strip()) for part in re.split(r"\s+AND\s+", query, flags=re.I)]
    return lambda issue: all(p(issue) for p in predicates)


def _clause(text: str) -> Predicate:
    text = text.strip()
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    if match := _PROPERTY.match(text):
        key, path, expected = match["key"].strip("\"' "), match["path"], _unquote(match["value"])
        return lambda issue: _property_equals(issue, key, path, expected)
    if match := _FIELD_EQ.match(text):
        field, expected = match["field"].lower(), _unquote(match["value"])
        if field == "project":
            return lambda issue: issue.key.rsplit("-", 1)[0].upper() == expected.upper()
        return lambda issue: expected.upper() in (issue.key.upper(), issue.id)
    if match := _KEY_IN.match(text):
        wanted = {_unquote(v.strip()).upper() for v in match["values"].split(",") if v.strip()}
        return lambda issue: issue.key.upper() in wanted or issue.id in wanted
    if match := _CREATED.match(text):
        since = time.time() - int(match["days"]) * 86400
        return lambda issue: issue.created >= since
    if match := _TEXT.match(text):
        needle = _unquote(match["value"]).strip().strip('"').lower()
        return lambda issue: needle in _searchable_text(issue)
    raise JqlError(f"The sandbox does not support this JQL clause: {text!r}")


def _searchable_text(issue: Issue) -> str:
    parts = [
        str(issue.request_field_values.get("summary", "")),
        str(issue.request_field_values.get("description", "")),
    ]
    parts += [str(c.get("body", "")) for c in issue.comments]
    return "\n".join(parts).lower()


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _property_equals(issue: Issue, key: str, path: str, expected: str) -> bool:
    if key not in issue.properties:
        return False
    value: Any = issue.properties[key]
    for step in path.split("."):
        if not isinstance(value, dict) or step not in value:
            return False
        value = value[step]
    if isinstance(value, bool):
        return str(value).lower() == expected.lower()
    if isinstance(value, list):
        return any(str(v) == expected for v in value)
    return str(value) == expected
