"""The tenant's redaction settings (issue #10, point 2): checked with the redaction engine's own
rules (422 for what it refuses), defaulted, patched, and served to the transcriber and analyzer only."""

from __future__ import annotations

import pytest
from config_api_testkit import NUMBER, SERVICE_TOKENS, auth, line_body, tenant_body

CONTRACT = {"kind": "contract_number", "pattern": r"\bVT-\d{6}\b"}


async def test_redaction_defaults_and_can_be_set_patched_and_reset(client, admin) -> None:  # type: ignore[no-untyped-def]
    r = await client.post("/v1/tenants", json=tenant_body(), headers=admin)
    assert r.status_code == 201
    default = r.json()["redaction"]
    assert (
        default["payment_cards"] and default["card_details"] and default["ibans"] and default["national_ids"]
    )
    assert not default["emails"] and not default["phone_numbers"] and default["custom_patterns"] == []
    r = await client.patch(
        "/v1/tenants/acme", json={"redaction": {"emails": True, "custom_patterns": [CONTRACT]}}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["redaction"]["emails"] is True and r.json()["redaction"]["custom_patterns"] == [CONTRACT]
    r = await client.patch("/v1/tenants/acme", json={"redaction": None}, headers=admin)
    assert r.status_code == 200 and r.json()["redaction"] == default


@pytest.mark.parametrize(
    ("redaction", "message"),
    [
        (
            {"custom_patterns": [{"kind": "contract", "pattern": r"VT-(\d{6}"}]},
            "not a valid regular expression",
        ),
        ({"custom_patterns": [{"kind": "contract", "pattern": r"(a+)+b"}]}, "nests a variable repetition"),
        ({"custom_patterns": [{"kind": "contract", "pattern": r"x*"}]}, "can match empty text"),
        ({"custom_patterns": [{"kind": "payment_card", "pattern": r"VT-\d+"}]}, "built-in kind"),
        ({"custom_patterns": [CONTRACT, CONTRACT]}, "unique"),
        ({"custom_patterns": [{"kind": "Contract", "pattern": r"VT-\d+"}]}, "pattern"),
        ({"payment_cards": "yes"}, "bool"),
        ({"max_input_chars": 10}, "Extra inputs"),
    ],
    ids=[
        "invalid-regex",
        "nested-repeat",
        "matches-empty",
        "builtin-kind",
        "duplicate-kind",
        "bad-kind",
        "not-a-bool",
        "unknown-setting",
    ],  # fmt: skip
)
async def test_a_policy_the_engine_refuses_is_a_422(client, admin, redaction, message) -> None:  # type: ignore[no-untyped-def]
    r = await client.post("/v1/tenants", json=tenant_body(redaction=redaction), headers=admin)
    assert r.status_code == 422 and message in r.text, r.text
    assert (await client.post("/v1/tenants", json=tenant_body(), headers=admin)).status_code == 201
    r = await client.patch("/v1/tenants/acme", json={"redaction": redaction}, headers=admin)
    assert r.status_code == 422 and message in r.text, r.text


async def test_only_the_transcriber_and_analyzer_views_carry_the_redaction_settings(client, admin) -> None:  # type: ignore[no-untyped-def]
    body = tenant_body(redaction={"custom_patterns": [CONTRACT], "phone_numbers": True})
    assert (await client.post("/v1/tenants", json=body, headers=admin)).status_code == 201
    await client.put(f"/v1/lines/{NUMBER}", json=line_body(), headers=admin)
    for role, token in SERVICE_TOKENS.items():
        view = (await client.get(f"/v1/runtime/lines/{NUMBER}", headers=auth(token))).json()
        assert ("redaction" in view["tenant"]) == (role in ("transcriber", "analyzer")), role
        if role in ("transcriber", "analyzer"):
            # only what was set: the engine's defaults apply to the rest
            assert view["tenant"]["redaction"] == {"custom_patterns": [CONTRACT], "phone_numbers": True}
