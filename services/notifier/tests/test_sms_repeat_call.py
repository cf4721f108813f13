"""A repeat call added to the caller's open request: the SMS says so, once, in the request's language."""

from __future__ import annotations

import pytest
from test_notify import FakeSms, deps, ticket

from voiceticket_common import texts
from voiceticket_common.events import NotificationSent
from voiceticket_notifier.handlers import notify_caller

pytest_plugins = ["test_notify"]  # its ledger fixture


@pytest.mark.parametrize("language", ["en", "de", "fr", "es", "it", "nl"])
async def test_the_sms_says_the_call_was_added_to_the_request(ledger, language: str) -> None:  # type: ignore[no-untyped-def]
    sms = FakeSms()
    event = ticket().model_copy(update={"added_to_existing": True, "language": language})
    [sent] = await notify_caller(event, deps(sms, ledger))
    assert isinstance(sent, NotificationSent)
    [message] = sms.sent
    assert message.body == texts.REPEAT_SMS_TEMPLATES[language].format(request_key="HELP-7")
    assert "HELP-7" in message.body and message.body != texts.SMS_TEMPLATES[language].format(
        request_key="HELP-7"
    )
    assert await notify_caller(event, deps(sms, ledger)) == [] and len(sms.sent) == 1, "once per call"


async def test_a_new_request_keeps_the_lines_template(ledger) -> None:  # type: ignore[no-untyped-def]
    sms = FakeSms()
    await notify_caller(ticket(), deps(sms, ledger))
    assert [m.body for m in sms.sent] == ["Request HELP-7: VPN down"]
