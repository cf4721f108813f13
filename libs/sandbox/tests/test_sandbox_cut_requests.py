"""A request cut off before its body was whole (its sender killed mid-send) reached no provider:
the stand-ins neither record nor validate it, so it is not reported as a spec violation."""

from __future__ import annotations

import json
from typing import Any

from voiceticket_sandbox import SandboxState
from voiceticket_sandbox.jira import create_jira_app

BODY = json.dumps({"jql": 'text ~ "CA0123"', "maxResults": 5}).encode()


async def post(app: Any, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drive the ASGI app with ``messages`` as what the client sends; returns what it answered."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/rest/api/3/search/jql", "raw_path": b"/rest/api/3/search/jql",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80),
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode()),
                    (b"authorization", b"Basic eDp5")],
    }  # fmt: skip
    pending = list(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_a_request_cut_off_mid_body_is_not_recorded() -> None:
    state = SandboxState()
    app = create_jira_app(state)
    cut = await post(
        app, [{"type": "http.request", "body": BODY[:10], "more_body": True}, {"type": "http.disconnect"}]
    )
    assert cut == [] and state.records_of("jira") == []
    whole = await post(app, [{"type": "http.request", "body": BODY, "more_body": False}])
    assert whole and whole[0]["status"] != 500
    [record] = state.records_of("jira")
    assert record["path"] == "/rest/api/3/search/jql"
