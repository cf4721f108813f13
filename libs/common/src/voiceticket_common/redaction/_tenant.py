"""A tenant's redaction policy from its configuration, compiled once per distinct policy."""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Mapping
from threading import Lock
from typing import Any

from ._engine import Redaction, RedactionPolicy, Redactor

log = logging.getLogger(__name__)

WITHHELD_TRANSCRIPT = "[transcript withheld: it could not be checked for payment and identity data]"
"""What stands in for a transcript that could not be redacted: nothing unredacted goes on."""

_CACHE_SIZE = 256
_cache: OrderedDict[str, Redactor] = OrderedDict()
_lock = Lock()


def tenant_redactor(config: Mapping[str, Any] | None) -> Redactor:
    """The Redactor for a tenant's ``redaction`` settings (None or {}: the default policy).

    Policies are parsed and their patterns compiled once: the Redactor is cached by the settings'
    canonical JSON (at most 256 distinct policies, least recently used dropped). Raises
    RedactionConfigError for settings the engine refuses (config-api refuses them on write too).
    """

    key = json.dumps(config or {}, sort_keys=True, separators=(",", ":"))
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    redactor = Redactor(RedactionPolicy.from_mapping(config or {}))
    with _lock:
        _cache[key] = redactor
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return redactor


def merged_counts(*counts: Mapping[str, int] | None) -> dict[str, int]:
    """Counts of several redactions added up per kind, sorted by kind."""

    total: dict[str, int] = {}
    for part in counts:
        for kind, count in (part or {}).items():
            total[kind] = total.get(kind, 0) + count
    return dict(sorted(total.items()))


def redact_or_none(
    config: Mapping[str, Any] | None, text: str, language: str | None = None
) -> Redaction | None:
    """``text`` redacted under the tenant's settings, or None when it cannot be (settings the engine
    refuses, text over the policy's limit, or any failure of the engine): the caller must then
    withhold the text, never pass it on. Logs the failure's type only, never the text."""

    try:
        return tenant_redactor(config).redact(text, language)
    except Exception as exc:  # fail closed: whatever went wrong, nothing unredacted goes on
        log.error("text could not be redacted; it is withheld", extra={"error_type": type(exc).__name__})
        return None
