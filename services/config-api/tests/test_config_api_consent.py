"""Consent settings of a line (issue #10): validated, stored, served to the views that need them."""

from __future__ import annotations

import pytest
from config_api_testkit import NUMBER, line_body


async def test_a_line_is_notice_by_default(seeded, admin) -> None:
    line = (await seeded.get(f"/v1/lines/{NUMBER}", headers=admin)).json()
    assert {k: line[k] for k in line if k.startswith("consent") or k == "on_consent_declined"} == {
        "consent_mode": "notice",
        "consent_key": "1",
        "consent_prompt": None,
        "consent_timeout_seconds": 6,
        "consent_repeat": True,
        "on_consent_declined": "none",
    }


async def test_press_key_settings_reach_ingress_and_jira_writer_only_as_they_need(
    seeded, admin, service_headers
) -> None:
    consent = {
        "consent_mode": "press_key",
        "consent_key": "#",
        "consent_prompt": "Drücken Sie die Raute, um der Aufzeichnung zuzustimmen.",
        "consent_timeout_seconds": 9,
        "consent_repeat": False,
        "on_consent_declined": "ticket",
    }
    r = await seeded.put(f"/v1/lines/{NUMBER}", json={**line_body(), **consent}, headers=admin)
    assert r.status_code == 200, r.text
    ingress = (await seeded.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers("ingress"))).json()
    assert {k: ingress["line"][k] for k in consent if k != "on_consent_declined"} == {
        k: v for k, v in consent.items() if k != "on_consent_declined"
    }
    assert "on_consent_declined" not in ingress["line"]
    writer = (await seeded.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers("jira-writer"))).json()
    assert writer["line"]["on_consent_declined"] == "ticket" and "consent_key" not in writer["line"]


@pytest.mark.parametrize(
    "bad",
    [
        {"consent_mode": "ask"},
        {"consent_key": "12"},
        {"consent_key": "a"},
        {"consent_timeout_seconds": 0},
        {"consent_timeout_seconds": 31},
        {"consent_prompt": ""},
        {"on_consent_declined": "sms"},
    ],
)
async def test_invalid_consent_settings_are_422(seeded, admin, bad) -> None:
    r = await seeded.put(f"/v1/lines/{NUMBER}", json={**line_body(), **bad}, headers=admin)
    assert r.status_code == 422, r.text
