"""Screening the caller before the call is answered (issue #16.5): the tenant's block list, then
Twilio's caller data. Either reason then goes the way of the line's ``screening_action``."""

from __future__ import annotations

from voiceticket_common.events.v1 import SCREENED_BLOCKED_CALLER, SCREENED_ROBOCALL
from voiceticket_common.runtime_views import IngressView

from . import params
from .block_list import BlockList
from .signature import Webhook


async def screened_caller(webhook: Webhook, view: IngressView, block_list: BlockList) -> str | None:
    """Why the caller is screened, or None. The block list first: the tenant's own decision wins
    over a spam score. It is asked only when the tenant blocks anyone, and only about a number
    (a withheld caller ID, ``client:`` or ``sip:`` is on no list)."""
    caller = params.caller(webhook)
    if (
        view.tenant.blocks_callers
        and caller.startswith("+")
        and await block_list.blocks(view.tenant_id, caller)
    ):
        return SCREENED_BLOCKED_CALLER
    if view.line.screen_robocalls and params.flagged_as_spam(webhook):
        return SCREENED_ROBOCALL
    return None
