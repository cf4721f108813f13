"""Flow control toward the tenant's Jira: a burst of analysed calls written at once keeps at most
the tenant's ``provider_concurrency.jira`` requests in flight to its site. Each request holds a
slot, not each call: a call's 3-4 requests take one in turn, and a 429 leaves with none."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from jira_writer_testkit import LINE, analyzed, deps

from voiceticket_common.bus import TransientError
from voiceticket_common.db import create_engine
from voiceticket_common.events import TicketCreated
from voiceticket_common.provider_limits import ProviderLimits
from voiceticket_common.runtime_views import JiraWriterView
from voiceticket_common.testing import StaticRuntimeConfig
from voiceticket_jira_writer.adapters import JsmServiceDesk
from voiceticket_jira_writer.handlers import write_request
from voiceticket_jira_writer.ledger import SqlRequestLedger
from voiceticket_sandbox import SandboxState, create_jira_app
from voiceticket_sandbox.server import serve_app
from voiceticket_sandbox.state import Fault
from voiceticket_sandbox.testing import InFlight

CALLS = 10
EMAIL, TOKEN = "bot@acme.example", "jira-token-0123456789"
DESK = {"id": "4", "project_key": "HELP", "request_types": [{"id": "41", "name": "Incident", "fields": [
    {"fieldId": "summary", "name": "Summary", "required": True},
    {"fieldId": "description", "name": "Description", "required": False}]}]}  # fmt: skip


def config(origin: str, jira: int | None) -> StaticRuntimeConfig[JiraWriterView]:
    line = {"service_desk_id": "4", "request_type_id": "41", "request_types": {"incident": "41"}}
    tenant = {
        "jira_base_url": origin,
        "jira_email": EMAIL,
        "jira_api_token": TOKEN,
        "provider_concurrency": {"jira": jira},
    }
    return StaticRuntimeConfig.of(JiraWriterView, {LINE: ("acme", line, tenant)})


async def prepare(origin: str) -> None:
    async with httpx.AsyncClient() as client:
        user = {"email": EMAIL, "api_token": TOKEN}
        (await client.post(f"{origin}/_sandbox/credentials", json=user)).raise_for_status()
        (await client.post(f"{origin}/_sandbox/servicedesks", json=DESK)).raise_for_status()


def call(n: int) -> Any:
    return analyzed().model_copy(update={"call_sid": "CA" + f"{n:032x}"})


async def burst(ledger: SqlRequestLedger, jira: int | None) -> tuple[InFlight, SandboxState]:
    state = SandboxState()
    counted = InFlight(create_jira_app(state), delay=0.1)
    async with (
        serve_app(counted) as origin,
        JsmServiceDesk(["http://127.0.0.1:*"], slots=ProviderLimits()) as desk,
    ):
        await prepare(origin)
        d = deps(desk, ledger)  # type: ignore[arg-type]
        d.config = config(origin, jira)
        results = await asyncio.gather(*(write_request(call(n), d) for n in range(CALLS)))
    assert all(isinstance(e, TicketCreated) for [e] in results)
    assert len({e.issue_key for [e] in results}) == CALLS
    assert counted.total >= 3 * CALLS  # create, property, comment (and field lists) per call
    assert all(r["valid"] for r in state.records)
    return counted, state


async def test_a_burst_never_has_more_than_the_tenants_jira_limit_in_flight(ledger, specs) -> None:  # type: ignore[no-untyped-def]
    counted, _ = await burst(ledger, 2)
    assert counted.peak == 2


async def test_unlimited_lets_the_burst_at_jira_at_once(ledger, specs) -> None:  # type: ignore[no-untyped-def]
    counted, _ = await burst(ledger, None)
    assert counted.peak >= CALLS


async def test_a_rate_limited_request_leaves_with_no_slot_for_the_bus_to_wait_out(tmp_path, specs) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/lagless.db")
    # No search-index lag: the retry may create at once (a 429 created nothing)
    ledger = SqlRequestLedger(engine, search_index_lag=timedelta(0))
    await ledger.create_schema()
    try:
        await rate_limited_then_retried(ledger)
    finally:
        await engine.dispose()


async def rate_limited_then_retried(ledger: SqlRequestLedger) -> None:
    state = SandboxState()
    state.faults.append(Fault("jira", "POST", r"/rest/servicedeskapi/request$", 429, retry_after=20))
    slots = ProviderLimits()
    async with (
        serve_app(create_jira_app(state)) as origin,
        JsmServiceDesk(["http://127.0.0.1:*"], slots=slots) as desk,
    ):
        await prepare(origin)
        d = deps(desk, ledger)  # type: ignore[arg-type]
        d.config = config(origin, 1)
        with pytest.raises(TransientError) as raised:
            await write_request(call(1), d)
        assert raised.value.retry_after == 20
        assert slots.in_use("acme", "jira") == 0  # nothing held while the bus waits 20 s
        # the tenant's one slot serves the next call at once, and the retry then writes the first
        [other] = await asyncio.wait_for(write_request(call(2), d), 10)
        [retried] = await write_request(call(1), d)
    assert isinstance(other, TicketCreated) and isinstance(retried, TicketCreated)
    assert other.issue_key != retried.issue_key
