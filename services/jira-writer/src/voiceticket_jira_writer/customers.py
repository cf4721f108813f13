"""Raising the request on behalf of the caller when the caller is a known customer of the desk.

The caller's word is the only evidence: an email address the analysis found in the transcript. It
is used only when exactly one email was found, exactly one active customer of the service desk has
that address (compared whole, not as the substring JSM's query matches) and the request type allows
raising on behalf. Anything less leaves the request raised by the integration's own account.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from voiceticket_common.bus import PermanentError
from voiceticket_common.events import Entity

from .ports import JiraSite, RequestTypeFields, ServiceDesk

log = logging.getLogger(__name__)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def caller_email(entities: Sequence[Entity]) -> str | None:
    """The one email address the caller gave, lower-cased; None if none or several."""
    found = {e.value.strip().lower() for e in entities if e.type == "email" and _EMAIL.match(e.value.strip())}
    return found.pop() if len(found) == 1 else None


async def customer_account(
    desk: ServiceDesk,
    site: JiraSite,
    service_desk_id: str,
    meta: RequestTypeFields,
    entities: Sequence[Entity],
) -> str | None:
    """The accountId to raise the request on behalf of, or None."""
    if not meta.can_raise_on_behalf_of:
        return None
    email = caller_email(entities)
    if email is None:
        return None
    try:
        customers = await desk.find_customers(site, service_desk_id, email)
    except PermanentError as exc:
        # No permission to list customers (or no such scope): raise the request ourselves.
        log.warning("customer lookup refused; request raised by the integration", extra={"error": str(exc)})
        return None
    matches = [c for c in customers if c.active and (c.email or "").strip().lower() == email]
    if len(matches) != 1:
        log.info("caller matched no single customer", extra={"matches": len(matches)})
        return None
    return matches[0].account_id
