"""The SMS template language, shared by config-api (which validates) and notifier (which renders).

A template is Python ``str.format`` text with named placeholders only, e.g.
``"Your request {request_key} was created: {summary}"``. Keeping the names here keeps the two
services in step: a template config-api accepts is one notifier can render.
"""

from __future__ import annotations

import string

SMS_PLACEHOLDERS = frozenset({"request_key", "summary"})
"""``request_key``: the JSM request key (never shortened); ``summary``: the request's summary
(shortened first when the SMS would exceed its segment budget)."""

REQUIRED_PLACEHOLDERS = frozenset({"request_key"})


def check_template(template: str) -> str:
    """Return ``template`` if notifier can render it; raise ValueError saying why not."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"is not a valid template ({exc}); write literal braces as {{{{ }}}}") from None
    fields = {name for _, name, _, _ in parsed if name is not None}
    unknown = fields - SMS_PLACEHOLDERS
    if unknown:
        raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; allowed: {sorted(SMS_PLACEHOLDERS)}")
    if any(spec or conversion for _, name, spec, conversion in parsed if name is not None):
        raise ValueError("placeholders take no format spec or conversion (e.g. {summary}, not {summary:.20})")
    missing = REQUIRED_PLACEHOLDERS - fields
    if missing:
        raise ValueError(f"must contain {', '.join('{' + m + '}' for m in sorted(missing))}")
    return template
