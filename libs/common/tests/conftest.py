from __future__ import annotations

import pytest

from voiceticket_common.events import Analysis, CallAnalyzed, Entity, Priority, Sentiment
from voiceticket_sandbox.testing import sandbox, specs  # noqa: F401 - fixtures

CALL_SID = "CA" + "1" * 32


@pytest.fixture
def analyzed() -> CallAnalyzed:
    return CallAnalyzed(
        tenant_id="acme",
        call_sid=CALL_SID,
        line_number="+15005550006",
        caller_number="+14155550100",
        recording_sid="RE" + "2" * 32,
        duration_seconds=42,
        transcript="My printer is on fire, account 12345678.",
        analysis=Analysis(
            summary="Printer on fire",
            description="The caller's printer is on fire.",
            intent="incident",
            entities=[Entity(type="account_number", value="12345678")],
            priority=Priority.HIGHEST,
            sentiment=Sentiment.NEGATIVE,
            language="en",
        ),
        model="gpt-4o-mini",
    )
