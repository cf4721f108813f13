"""The JSM adapter's request status (repeat callers) against the Jira stand-in, which validates
every request against the spec: open, resolved, gone."""

from __future__ import annotations

import httpx
from test_jsm_adapter import desk, draft, site  # noqa: F401 - the desk fixture

from voiceticket_jira_writer.ports import RequestStatus


async def test_open_resolved_and_missing_requests(sandbox, desk) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    created = await desk.create_request(site(sandbox), draft())
    status = await desk.request_status(site(sandbox), created.issue_key)
    assert status == RequestStatus(created.issue_id, created.issue_key, "VPN down", done=False)

    async with httpx.AsyncClient() as client:
        moved = await client.post(
            f"{sandbox.urls.jira}/_sandbox/issues/{created.issue_key}/status",
            json={"status": "Resolved", "category": "DONE"},
        )
        moved.raise_for_status()
    resolved = await desk.request_status(site(sandbox), created.issue_key)
    assert resolved is not None and resolved.done

    assert await desk.request_status(site(sandbox), "HELP-999") is None, "a 404 is no candidate, not an error"
    async with httpx.AsyncClient() as client:
        recorded = (await client.get(f"{sandbox.urls.jira}/_sandbox/requests")).json()
    assert recorded and all(r["valid"] for r in recorded), "every request satisfies the official spec"
