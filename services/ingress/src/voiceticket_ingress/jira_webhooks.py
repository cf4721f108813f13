"""Jira's webhook (``POST /jira/webhooks/{tenant}?line=<E.164>``): a request's status changed, so
``request.status_changed`` is published and the notifier may text the caller (status texts).

Jira Cloud signs the deliveries of an admin webhook registered with a secret: ``X-Hub-Signature:
sha256=<hex HMAC-SHA256 of the raw body, keyed by the secret>`` (the WebSub form). The secret is
the tenant's ``jira_webhook_secret`` credential, which ingress reads through the view of one of the
tenant's lines (``line``, any of them: a business's number, not caller data); a request without
the header, with another signature, for another tenant than the line's, or for a tenant with no
secret is refused (403) and nothing is published. Only ``jira:issue_updated`` deliveries whose
changelog moves the status publish anything; the user and the issue's other fields are not read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from typing import Any

from fastapi import APIRouter, Request, Response

from voiceticket_common.bus import TransientError
from voiceticket_common.config_client import UnknownLine
from voiceticket_common.events import RequestStatusChanged

from .gate import WebhookGate
from .params import Malformed
from .signature import Forbidden, TooLarge

log = logging.getLogger(__name__)

MAX_JIRA_BODY_BYTES = 1024 * 1024  # an issue with its fields; far more is not a webhook of ours
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_TENANT = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
SIGNATURE_PREFIX = "sha256="


def jira_signature(secret: str, body: bytes) -> str:
    """``X-Hub-Signature`` as Jira Cloud sends it for ``body``."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_jira_signature(secret: str, body: bytes, header: str) -> None:
    """Raise :class:`Forbidden` unless ``header`` is Jira's signature of ``body`` under ``secret``."""
    if not secret or not header.startswith(SIGNATURE_PREFIX):
        raise Forbidden()
    expected = jira_signature(secret, body)
    if not hmac.compare_digest(expected.encode(), header.strip().lower().encode("utf-8", "replace")):
        raise Forbidden()


def status_change(tenant_id: str, payload: dict[str, Any]) -> RequestStatusChanged | None:
    """The status change a ``jira:issue_updated`` payload reports; None for anything else."""
    if payload.get("webhookEvent") != "jira:issue_updated":
        return None
    changelog = payload.get("changelog")
    issue = payload.get("issue")
    if not isinstance(changelog, dict) or not isinstance(issue, dict):
        return None
    items = changelog.get("items")
    moved = (
        [i for i in items if isinstance(i, dict) and i.get("field") == "status"]
        if isinstance(items, list)
        else []
    )
    if not moved:
        return None
    fields = issue.get("fields") if isinstance(issue.get("fields"), dict) else {}
    status = fields.get("status") if isinstance(fields, dict) else None
    category = status.get("statusCategory") if isinstance(status, dict) else None
    to_status = moved[-1].get("toString") or (status.get("name") if isinstance(status, dict) else None)
    try:
        return RequestStatusChanged.of(
            tenant_id=tenant_id,
            issue_key=str(issue.get("key") or ""),
            changelog_id=str(changelog.get("id") or ""),
            from_status=moved[-1].get("fromString"),
            to_status=str(to_status or ""),
            to_category=(
                str(category.get("key")).lower()
                if isinstance(category, dict) and category.get("key")
                else None
            ),
        )
    except ValueError:
        raise Malformed("body", "is not a status change of an issue") from None


class JiraWebhooks:
    """``/jira/webhooks/{tenant}``."""

    def __init__(self, gate: WebhookGate) -> None:
        self._gate = gate
        self.router = APIRouter(prefix="/jira")
        self.router.add_api_route("/webhooks/{tenant_id}", self.issue_event, methods=["POST"])

    async def issue_event(self, tenant_id: str, request: Request) -> Response:
        gate = self._gate
        line_number = request.query_params.get("line", "")
        if not _TENANT.fullmatch(tenant_id) or not _E164.fullmatch(line_number):
            raise Forbidden()
        body = await _read_body(request)
        try:
            view = await gate.config(request).line(line_number)
        except UnknownLine:
            raise Forbidden() from None
        except TransientError:
            log.error("config-api unavailable while receiving a Jira webhook")
            return Response(status_code=503)  # Jira retries a 5xx
        if view.tenant_id != tenant_id:
            raise Forbidden()
        secret = view.tenant.jira_webhook_secret
        if secret is None:
            log.warning("jira webhook for a tenant with no jira_webhook_secret: refused")
            raise Forbidden()
        verify_jira_signature(secret.get_secret_value(), body, request.headers.get("x-hub-signature", ""))
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            raise Malformed("body", "is not JSON") from None
        event = status_change(tenant_id, payload) if isinstance(payload, dict) else None
        if event is None:
            return Response(status_code=204)
        # Jira retries a delivery it got no 2xx for: the same changelog id, the same event id.
        await gate.publisher(request).publish(event)
        log.info(
            "request status changed",
            extra={
                "issue_key": event.issue_key,
                "to_status": event.to_status,
                "to_category": event.to_category,
            },
        )
        return Response(status_code=204)


async def _read_body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JIRA_BODY_BYTES:
            raise TooLarge()
        chunks.append(chunk)
    return b"".join(chunks)
