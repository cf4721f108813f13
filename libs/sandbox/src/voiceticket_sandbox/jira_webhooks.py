"""Jira Cloud's admin webhooks, as the Jira stand-in sends them.

``POST /_sandbox/webhooks`` registers one (a URL and a secret, as an admin does under System >
WebHooks); from then on moving a request's status (``POST /_sandbox/issues/{key}/status``) sends
``jira:issue_updated`` with the status change in its changelog to every registered URL, signed as
Jira Cloud signs the deliveries of a webhook with a secret: ``X-Hub-Signature: sha256=<hex
HMAC-SHA256 of the raw body>``, with ``X-Atlassian-Webhook-Identifier`` naming the delivery (a retry
keeps it). ``POST /_sandbox/webhooks/redeliver`` sends the last delivery again, byte for byte, as
Jira retries one it got no 2xx for.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from voiceticket_sandbox.jira_views import SANDBOX_USER
from voiceticket_sandbox.state import Issue

_CATEGORY_KEYS = {"NEW": "new", "INDETERMINATE": "indeterminate", "DONE": "done"}


@dataclass(frozen=True)
class Delivery:
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass
class JiraWebhooks:
    """The registered webhooks and the deliveries made."""

    targets: list[tuple[str, str]] = field(default_factory=list)  # (url, secret)
    deliveries: list[Delivery] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    next_changelog_id: int = 10100

    def register(self, url: str, secret: str) -> None:
        self.targets.append((url, secret))

    async def status_changed(self, issue: Issue, from_status: str, base_url: str) -> None:
        if not self.targets:
            return
        self.next_changelog_id += 1
        payload = issue_updated(issue, from_status, str(self.next_changelog_id), base_url)
        body = json.dumps(payload, separators=(",", ":")).encode()
        for url, secret in self.targets:
            delivery = Delivery(url, body, signed_headers(secret, body))
            self.deliveries.append(delivery)
            await self._send(delivery)

    async def redeliver(self) -> int | None:
        if not self.deliveries:
            return None
        return await self._send(self.deliveries[-1])

    async def _send(self, delivery: Delivery) -> int:
        async with httpx.AsyncClient(timeout=15.0) as client:
            response = await client.post(delivery.url, content=delivery.body, headers=delivery.headers)
        self.answers.append(response.status_code)
        return response.status_code


def signed_headers(secret: str, body: bytes) -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Atlassian Webhook HTTP Client",
        "X-Atlassian-Webhook-Identifier": str(uuid.uuid4()),
        "X-Hub-Signature": f"sha256={signature}",
    }


def issue_updated(issue: Issue, from_status: str, changelog_id: str, base_url: str) -> dict[str, Any]:
    """The body of ``jira:issue_updated`` for a status change (the fields Jira Cloud sends that matter)."""
    category = _CATEGORY_KEYS.get(issue.status_category, "undefined")
    return {
        "timestamp": int(time.time() * 1000),
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": {"accountId": SANDBOX_USER["accountId"], "displayName": SANDBOX_USER["displayName"]},
        "issue": {
            "id": issue.id,
            "self": f"{base_url}/rest/api/2/issue/{issue.id}",
            "key": issue.key,
            "fields": {
                "summary": issue.request_field_values.get("summary"),
                "status": {
                    "name": issue.status,
                    "statusCategory": {"key": category, "name": category.title()},
                },
            },
        },
        "changelog": {
            "id": changelog_id,
            "items": [
                {
                    "field": "status",
                    "fieldtype": "jira",
                    "fieldId": "status",
                    "fromString": from_status,
                    "toString": issue.status,
                }
            ],
        },
    }
