"""A line's repeat-caller matcher (issue #16, part 1 follow-up): embedding by default, stored, served
to jira-writer only."""

from __future__ import annotations

from config_api_testkit import NUMBER, line_body


async def test_embedding_by_default(seeded, admin) -> None:  # type: ignore[no-untyped-def]
    line = (await seeded.get(f"/v1/lines/{NUMBER}", headers=admin)).json()
    assert line["repeat_matcher"] == "embedding"


async def test_stored_and_served_to_jira_writer_only(seeded, admin, service_headers) -> None:  # type: ignore[no-untyped-def]
    body = {**line_body(), "repeat_callers": "comment", "repeat_matcher": "lexical"}
    r = await seeded.put(f"/v1/lines/{NUMBER}", json=body, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["repeat_matcher"] == "lexical"
    writer = (await seeded.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers("jira-writer"))).json()
    assert writer["line"]["repeat_matcher"] == "lexical"
    notifier = (await seeded.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers("notifier"))).json()
    assert "repeat_matcher" not in notifier["line"]


async def test_another_matcher_is_refused(seeded, admin) -> None:  # type: ignore[no-untyped-def]
    r = await seeded.put(f"/v1/lines/{NUMBER}", json={**line_body(), "repeat_matcher": "llm"}, headers=admin)
    assert r.status_code == 422 and "repeat_matcher" in r.text, r.text
