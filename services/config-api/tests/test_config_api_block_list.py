"""A tenant's block list of callers (issue #16.5): the admin API, ingress's runtime check, and that
no number is stored, answered, audited or logged; the tenant's removal and a caller's erasure."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from config_api_testkit import NUMBER, SERVICE_TOKENS, auth, line_body, tenant_body
from sqlalchemy import text

CALLER = "+14155550123"
OTHER = "+14155550999"
DIGITS = CALLER.removeprefix("+")
NATIONAL = DIGITS[1:]  # "4155550123": the number without its country code is personal data too
URL = "/v1/tenants/acme/blocked-callers"


def ingress() -> dict[str, str]:
    return auth(SERVICE_TOKENS["ingress"])


async def rows(client: httpx.AsyncClient, table: str) -> list[dict[str, Any]]:
    async with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        result = await session.execute(text(f"SELECT * FROM {table}"))  # noqa: S608 - a fixed name
        return [dict(r._mapping) for r in result]


async def check(client: httpx.AsyncClient, number: str, tenant_id: str = "acme") -> bool:
    r = await client.post(
        "/v1/runtime/blocked-callers/check",
        json={"tenant_id": tenant_id, "caller_number": number},
        headers=ingress(),
    )
    assert r.status_code == 200, r.text
    blocked: bool = r.json()["blocked"]
    return blocked


async def blocks_callers(client: httpx.AsyncClient) -> bool:
    r = await client.get(f"/v1/runtime/lines/{NUMBER}", headers=ingress())
    assert r.status_code == 200, r.text
    flag: bool = r.json()["tenant"]["blocks_callers"]
    return flag


def no_number_in(value: object) -> bool:
    dumped = json.dumps(value, default=str)
    return DIGITS not in dumped and NATIONAL not in dumped


async def test_a_blocked_caller_is_stored_as_a_keyed_hash_and_listed_without_the_number(
    seeded: httpx.AsyncClient, admin: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert not await blocks_callers(seeded), "no list: ingress is told it need not ask"
    r = await seeded.post(URL, json={"number": CALLER, "note": "robocaller"}, headers=admin)
    assert r.status_code == 201, r.text
    entry = r.json()
    assert set(entry) == {"id", "tenant_id", "subject_prefix", "note", "created_at"}
    assert len(entry["subject_prefix"]) == 16 and int(entry["subject_prefix"], 16) >= 0
    assert entry["note"] == "robocaller" and no_number_in(r.text)

    [row] = await rows(seeded, "blocked_callers")
    assert (
        no_number_in(row) and row["subject"].startswith(entry["subject_prefix"]) and len(row["subject"]) == 64
    )
    listed = await seeded.get(URL, headers=admin)
    assert listed.status_code == 200 and [e["id"] for e in listed.json()] == [entry["id"]]
    assert no_number_in(listed.text)

    audit = [e for e in await rows(seeded, "audit_events") if e["action"] == "block_list.add"]
    assert [(e["target"], e["tenant_id"], e["outcome"]) for e in audit] == [
        (f"caller:{entry['subject_prefix']}", "acme", "success")
    ]
    assert no_number_in(await rows(seeded, "audit_events"))
    assert no_number_in([record.getMessage() for record in caplog.records])
    assert no_number_in([record.__dict__ for record in caplog.records])


async def test_the_hash_is_the_vaults_subject_of_the_number(
    seeded: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """The same keyed hash the call keys carry: an erasure or export finds the entry by it."""
    assert (await seeded.post(URL, json={"number": CALLER}, headers=admin)).status_code == 201
    call = "CA" + "a" * 32
    put = await seeded.put(
        f"/v1/runtime/calls/{call}/key",
        json={"tenant_id": "acme", "caller_number": CALLER},
        headers=ingress(),
    )
    assert put.status_code == 200
    [key_row] = await rows(seeded, "call_keys")
    [block_row] = await rows(seeded, "blocked_callers")
    assert block_row["subject"] == key_row["subject"]


async def test_ingress_asks_whether_a_caller_is_blocked_and_the_view_says_when_to_ask(
    seeded: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert not await check(seeded, CALLER)
    r = await seeded.post(URL, json={"number": CALLER}, headers=admin)
    assert r.status_code == 201
    assert await blocks_callers(seeded)
    assert await check(seeded, CALLER) and await check(seeded, f" {CALLER} ")  # Twilio's From, stripped
    assert not await check(seeded, OTHER)
    assert not await check(seeded, "anonymous")
    assert not await check(seeded, CALLER, tenant_id="globex"), "another tenant's list is its own"
    outbox = [(o["tenant_id"], o["kind"]) for o in await rows(seeded, "config_outbox")]
    assert outbox[-1] == ("acme", "tenant"), "announced: ingress drops what it cached of the tenant"

    for role in ("notifier", "jira-writer"):
        refused = await seeded.post(
            "/v1/runtime/blocked-callers/check",
            json={"tenant_id": "acme", "caller_number": CALLER},
            headers=auth(SERVICE_TOKENS[role]),
        )
        assert refused.status_code == 403
    assert (await seeded.post(URL, json={"number": OTHER}, headers=ingress())).status_code == 403


async def test_removing_an_entry_by_id_or_by_number_unblocks(
    seeded: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first = (await seeded.post(URL, json={"number": CALLER}, headers=admin)).json()
    assert (await seeded.post(URL, json={"number": OTHER}, headers=admin)).status_code == 201
    assert (await seeded.delete(f"{URL}/{first['id']}", headers=admin)).status_code == 204
    assert not await check(seeded, CALLER) and await check(seeded, OTHER)
    assert (await seeded.delete(f"{URL}/{first['id']}", headers=admin)).status_code == 404

    removed = await seeded.post(f"{URL}/removals", json={"number": OTHER}, headers=admin)
    assert removed.status_code == 200 and no_number_in(removed.text)
    assert not await check(seeded, OTHER) and not await blocks_callers(seeded)
    missing = await seeded.post(f"{URL}/removals", json={"number": OTHER}, headers=admin)
    assert missing.status_code == 404

    audit = [e for e in await rows(seeded, "audit_events") if e["action"] == "block_list.remove"]
    assert [e["outcome"] for e in audit] == ["success", "refused", "success", "refused"]
    assert all(e["target"].startswith(("caller:", "tenant:")) for e in audit)
    assert no_number_in(audit)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"number": "4155550123"}, 422),  # not E.164
        ({"number": "+1 415 555 0123"}, 422),
        ({"number": CALLER, "note": "x" * 201}, 422),
        ({"number": CALLER, "extra": 1}, 422),
        ({}, 422),
    ],
)
async def test_invalid_entries_are_refused_and_audited_without_the_number(
    seeded: httpx.AsyncClient, admin: dict[str, str], body: dict[str, Any], status: int
) -> None:
    r = await seeded.post(URL, json=body, headers=admin)
    assert r.status_code == status, r.text
    assert await rows(seeded, "blocked_callers") == []
    [entry] = [e for e in await rows(seeded, "audit_events") if e["action"] == "block_list.add"]
    assert entry["outcome"] == "refused" and no_number_in(entry)


async def test_a_caller_is_blocked_once_and_only_by_a_known_tenant(
    seeded: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert (await seeded.post(URL, json={"number": CALLER}, headers=admin)).status_code == 201
    again = await seeded.post(URL, json={"number": CALLER, "note": "twice"}, headers=admin)
    assert again.status_code == 409 and len(await rows(seeded, "blocked_callers")) == 1
    unknown = await seeded.post("/v1/tenants/globex/blocked-callers", json={"number": CALLER}, headers=admin)
    assert unknown.status_code == 404
    assert (await seeded.get("/v1/tenants/globex/blocked-callers", headers=admin)).status_code == 404
    read_only = await seeded.get(URL, headers=ingress())
    assert read_only.status_code == 403


async def test_removing_the_tenant_removes_its_block_list(
    seeded: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert (await seeded.post("/v1/tenants", json=tenant_body("globex"), headers=admin)).status_code == 201
    assert (
        await seeded.put("/v1/lines/+14155550101", json=line_body("globex"), headers=admin)
    ).status_code == 201
    for tenant in ("acme", "globex"):
        url = f"/v1/tenants/{tenant}/blocked-callers"
        assert (await seeded.post(url, json={"number": CALLER}, headers=admin)).status_code == 201
    assert (await seeded.delete("/v1/tenants/acme", headers=admin)).status_code == 200
    assert [r["tenant_id"] for r in await rows(seeded, "blocked_callers")] == ["globex"]
    [removal] = [e for e in await rows(seeded, "audit_events") if e["action"] == "tenant.delete"]
    details = removal["details"] if isinstance(removal["details"], dict) else json.loads(removal["details"])
    assert details["blocked_callers_deleted"] == 1
    assert await check(seeded, CALLER, tenant_id="globex")


async def test_an_erasure_keeps_the_entry_and_says_so_and_the_export_shows_it(
    seeded: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert (await seeded.post(URL, json={"number": CALLER, "note": "spam"}, headers=admin)).status_code == 201
    export = await seeded.post("/v1/privacy/exports", json={"phone": CALLER}, headers=admin)
    assert export.status_code == 200, export.text
    assert [(b["tenant_id"], b["note"]) for b in export.json()["block_lists"]] == [("acme", "spam")]
    other = await seeded.post("/v1/privacy/exports", json={"phone": OTHER}, headers=admin)
    assert other.json()["block_lists"] == []

    erasure = await seeded.post("/v1/privacy/erasures", json={"phone": CALLER}, headers=admin)
    assert erasure.status_code == 200, erasure.text
    report = erasure.json()
    assert report["block_list_entries_kept"] == 1
    assert any(
        step.startswith("Block list: the caller stays blocked by acme") for step in report["remaining_steps"]
    )
    assert await check(seeded, CALLER), "an erasure does not let a blocked caller through"
    assert no_number_in(erasure.text)
