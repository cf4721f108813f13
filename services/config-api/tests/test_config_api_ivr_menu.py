"""A line's IVR menu (issue #16, part 2): validated, stored as JSON, served to ingress only."""

from __future__ import annotations

from typing import Any

import pytest
from config_api_testkit import NUMBER, line_body

MENU: dict[str, Any] = {
    "prompt": "Press 1 or say billing for invoices; press 2 or say Deutsch for German.",
    "options": [
        {"digit": "1", "label": "Billing", "phrases": ["invoice", "refund"], "request_type_id": "12"},
        {"digit": "#", "label": "Deutsch", "phrases": ["German"], "language": "de"},
    ],
    "timeout_seconds": 7,
    "attempts": 3,
}
STORED = {
    **MENU,
    "options": [
        {**MENU["options"][0], "language": None},
        {**MENU["options"][1], "request_type_id": None},
    ],
}


async def test_a_line_has_no_menu_by_default(seeded, admin, service_headers) -> None:
    line = (await seeded.get(f"/v1/lines/{NUMBER}", headers=admin)).json()
    assert line["ivr_menu"] is None
    ingress = (await seeded.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers("ingress"))).json()
    assert ingress["line"].get("ivr_menu") is None


async def test_a_menu_is_stored_and_reaches_ingress_only(seeded, admin, service_headers) -> None:
    r = await seeded.put(f"/v1/lines/{NUMBER}", json={**line_body(), "ivr_menu": MENU}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["ivr_menu"] == STORED
    assert (await seeded.get(f"/v1/lines/{NUMBER}", headers=admin)).json()["ivr_menu"] == STORED
    ingress = (await seeded.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers("ingress"))).json()
    assert ingress["line"]["ivr_menu"] == STORED
    writer = (await seeded.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers("jira-writer"))).json()
    assert "ivr_menu" not in writer["line"]  # the choice travels on the events, not the view
    # and removed again: null is no menu
    r = await seeded.put(f"/v1/lines/{NUMBER}", json={**line_body(), "ivr_menu": None}, headers=admin)
    assert r.status_code == 200 and r.json()["ivr_menu"] is None


def _option(**changes: Any) -> dict[str, Any]:
    return {"digit": "1", "label": "Billing", **changes}


@pytest.mark.parametrize(
    "menu",
    [
        {"options": []},
        {"options": [_option(digit="12")]},
        {"options": [_option(digit="a")]},
        {"options": [_option(), _option(label="Sales")]},  # two options on one key
        {"options": [_option(), _option(digit="2", label="Sales", phrases=["billing"])]},  # same words
        {"options": [_option(), _option(digit="2", label="BILLING!")]},  # the same words, normalised
        {"options": [_option(request_type_id="ten")]},
        {"options": [_option(language="deu")]},
        {"options": [_option(label="")]},
        {"options": [_option(phrases=["a, b"])]},  # a comma would split the speech hints
        {"options": [_option(phrases=["x" * 101])]},
        {"options": [_option()], "timeout_seconds": 0},
        {"options": [_option()], "attempts": 4},
        {"options": [_option()], "prompt": ""},
        {"options": [_option(color="red")]},
    ],
)
async def test_invalid_menus_are_422(seeded, admin, menu) -> None:
    r = await seeded.put(f"/v1/lines/{NUMBER}", json={**line_body(), "ivr_menu": menu}, headers=admin)
    assert r.status_code == 422, r.text
