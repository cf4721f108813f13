"""A line's repeat-caller settings (issue #16, part 1): validated, stored, served to jira-writer only."""

from __future__ import annotations

import pytest
from config_api_testkit import NUMBER, line_body


async def test_off_and_72_hours_by_default(seeded, admin, service_headers) -> None:  # type: ignore[no-untyped-def]
    line = (await seeded.get(f"/v1/lines/{NUMBER}", headers=admin)).json()
    assert (line["repeat_callers"], line["repeat_window_hours"]) == ("off", 72)


async def test_stored_and_served_to_jira_writer_only(seeded, admin, service_headers) -> None:  # type: ignore[no-untyped-def]
    body = {**line_body(), "repeat_callers": "comment", "repeat_window_hours": 24}
    r = await seeded.put(f"/v1/lines/{NUMBER}", json=body, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["repeat_callers"], r.json()["repeat_window_hours"]) == ("comment", 24)
    writer = (await seeded.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers("jira-writer"))).json()
    assert (writer["line"]["repeat_callers"], writer["line"]["repeat_window_hours"]) == ("comment", 24)
    ingress = (await seeded.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers("ingress"))).json()
    assert "repeat_callers" not in ingress["line"]


@pytest.mark.parametrize(
    "changes",
    [{"repeat_callers": "merge"}, {"repeat_window_hours": 0}, {"repeat_window_hours": 721}],
)
async def test_wrong_values_are_refused(seeded, admin, changes) -> None:  # type: ignore[no-untyped-def]
    r = await seeded.put(f"/v1/lines/{NUMBER}", json={**line_body(), **changes}, headers=admin)
    assert r.status_code == 422, r.text
    assert next(iter(changes)) in r.text
