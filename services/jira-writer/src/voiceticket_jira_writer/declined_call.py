"""A request for a caller who declined recording (``call.consent.declined``), when the line asks
for one (``on_consent_declined`` ``ticket``; the default ``none`` makes no request).

A line with ``consent_mode`` ``press_key`` records only after the caller pressed its consent key.
Without the key nothing was recorded: there is no recording and no transcript, so the request
says that a caller rang and declined recording, and the issue property keeps who and when
(``consent`` ``declined``), so an agent can call back. Like every call, at most one request.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from voiceticket_common.events import ConsentDeclined, Event
from voiceticket_common.events.v1 import CONSENT_DECLINED

from .deps import JiraWriterDeps
from .field_values import Wanted
from .handlers import RequestTarget, _leased, _open_request, ticket_created
from .jira_text import plain_line, wiki_line
from .request_content import caller_details, unrecorded_description, unrecorded_wanted
from .request_steps import ensure_property
from .site import jira_site

__all__ = ["DECLINED_SUMMARY", "declined_property", "declined_wanted", "write_declined_call"]

log = logging.getLogger(__name__)

DECLINED_SUMMARY = "Call not recorded: caller declined recording"

_REASONS = {
    "no_input": "pressed no key",
    "invalid_key": "pressed another key than the consent key",
}


async def write_declined_call(event: ConsentDeclined, deps: JiraWriterDeps) -> Sequence[Event]:
    config = await deps.config.line(event.line_number)
    line = config.line
    if line.on_consent_declined != "ticket":
        log.info("caller declined recording; the line makes no ticket for it", extra={"reason": event.reason})
        return []
    site = jira_site(config)
    target = RequestTarget(line.service_desk_id, line.request_type_id)
    async with _leased(event, deps) as entry:
        request = await _open_request(entry, deps, site, target, declined_wanted(event, line.phone_field_id))
        await ensure_property(deps, site, entry, request, declined_property(event))
    return [ticket_created(event, request, target, DECLINED_SUMMARY, line.language)]


def declined_description(event: ConsentDeclined) -> str:
    """Wiki markup; the reason is escaped like any text from outside."""

    why = _REASONS.get(event.reason, wiki_line(event.reason))
    asked = "once" if event.attempts == 1 else f"{event.attempts} times"
    return unrecorded_description(
        event,
        "A caller rang the support line and declined recording: asked "
        f"{asked} to press the consent key, they {why}.",
        "Nothing was recorded: there is no recording and no transcript.",
    )


def declined_wanted(event: ConsentDeclined, phone_field_id: str | None) -> Wanted:
    return unrecorded_wanted(event, DECLINED_SUMMARY, declined_description(event), phone_field_id)


def declined_property(event: ConsentDeclined) -> dict[str, Any]:
    """Call metadata for the issue property; JSON data, cleaned, not wiki-escaped (``jira_text``)."""

    return {
        "schemaVersion": 1,
        "callSid": event.call_sid,
        "consent": CONSENT_DECLINED,
        "consentDeclinedReason": plain_line(event.reason),
        "consentAttempts": event.attempts,
        **caller_details(event),
    }
