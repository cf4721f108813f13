"""The SMS template in the request's language: the built-in one per language, the line's own wins."""

from __future__ import annotations

import pytest
from test_notify import FakeSms, deps, ticket

from voiceticket_common import texts
from voiceticket_common.runtime_views import DEFAULT_SMS_TEMPLATE
from voiceticket_notifier.handlers import notify_caller

pytest_plugins = ["test_notify"]  # its ledger fixture


@pytest.mark.parametrize(
    ("ticket_language", "line_language", "expected"),
    [
        ("de", "en", texts.SMS_TEMPLATES["de"]),  # auto mode: the caller's language
        ("fr", "en", texts.SMS_TEMPLATES["fr"]),
        ("en", "de", texts.SMS_TEMPLATES["en"]),  # enforced English project, German caller
        (None, "es", texts.SMS_TEMPLATES["es"]),  # a ticket that names no language: the line's
    ],
)
async def test_a_stored_default_template_is_sent_in_the_requests_language(
    ledger, ticket_language: str | None, line_language: str, expected: str
) -> None:  # type: ignore[no-untyped-def]
    sms = FakeSms()
    event = ticket().model_copy(update={"language": ticket_language})
    await notify_caller(event, deps(sms, ledger, sms_template=DEFAULT_SMS_TEMPLATE, language=line_language))
    [message] = sms.sent
    assert message.body == expected.format(request_key="HELP-7")


async def test_the_lines_own_template_wins_whatever_the_language(ledger) -> None:  # type: ignore[no-untyped-def]
    sms = FakeSms()
    event = ticket().model_copy(update={"language": "de"})
    await notify_caller(event, deps(sms, ledger, language="en"))
    assert [m.body for m in sms.sent] == ["Request HELP-7: VPN down"]
