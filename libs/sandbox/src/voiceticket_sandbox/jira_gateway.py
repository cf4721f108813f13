"""Who may call the Jira stand-in, and the OAuth 2.0 (3LO) gateway path in front of it.

Basic auth (Atlassian account email + API token) is what a site URL takes. An OAuth 2.0 access
token is only good at ``https://api.atlassian.com/ex/jira/<cloudId>/rest/...`` for the site with
that cloud id, so the stand-in serves the same API under ``/ex/jira/<cloudId>`` and accepts bearer
tokens only there, and only for their own cloud id: a writer that sends its OAuth token to the site
URL fails here as it would against Jira Cloud.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from voiceticket_sandbox.state import JiraState

CLOUD_ID_SCOPE_KEY = "voiceticket_sandbox.cloud_id"
_GATEWAY = re.compile(r"^/ex/jira/(?P<cloud>[^/]+)(?P<rest>/rest/.*)$")


class OAuthGateway:
    """Strips ``/ex/jira/<cloudId>`` so the spec check and routes see ``/rest/...``; notes the cloud id."""

    def __init__(self, app: ASGIApp, *, jira: JiraState) -> None:
        self.app = app
        self.jira = jira

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _GATEWAY.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        cloud_id = match["cloud"]
        if cloud_id not in set(self.jira.oauth_tokens.values()):
            body = json.dumps({"code": 404, "message": "Cannot find cloud resource"}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        path = match["rest"]
        scope = {**scope, "path": path, "raw_path": path.encode(), CLOUD_ID_SCOPE_KEY: cloud_id}
        await self.app(scope, receive, send)


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """The user and password of a request's HTTP Basic ``Authorization`` header, if it has one."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(credentials).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def authorized(jira: JiraState, request: Request) -> bool:
    """Basic auth with a configured user's API token, or a bearer token at its own cloud id's gateway."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        cloud_id = request.scope.get(CLOUD_ID_SCOPE_KEY)
        token = credentials.strip()
        return cloud_id is not None and any(
            secrets.compare_digest(known, token) and cloud == cloud_id
            for known, cloud in jira.oauth_tokens.items()
        )
    basic = basic_credentials(request)
    if basic is None:
        return False
    email, token = basic
    expected = jira.credentials.get(email)
    return expected is not None and secrets.compare_digest(expected, token)
