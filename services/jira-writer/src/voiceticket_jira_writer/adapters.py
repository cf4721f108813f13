"""Jira Service Management over its REST APIs (servicedeskapi + platform v3 for properties/search)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from voiceticket_common.bus import PermanentError
from voiceticket_common.http import provider_client, raise_for_provider_status, transport_error

from .ports import CreatedRequest, JiraSite, RequestDraft


class JsmServiceDesk:
    def __init__(self, allowed_hosts: Sequence[str], timeout: float = 30.0) -> None:
        self._client = provider_client("jira", allowed_hosts, timeout=timeout)

    async def _call(self, site: JiraSite, what: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(
                method,
                site.base_url.rstrip("/") + path,
                auth=(site.email, site.api_token.get_secret_value()),
                headers={"Accept": "application/json"},
                **kwargs,
            )
        except httpx.HTTPError as exc:
            raise transport_error(exc, "jira", what) from None
        raise_for_provider_status(response, "jira", what)
        return response

    async def create_request(self, site: JiraSite, draft: RequestDraft) -> CreatedRequest:
        response = await self._call(
            site,
            "create request",
            "POST",
            "/rest/servicedeskapi/request",
            json={
                "serviceDeskId": draft.service_desk_id,
                "requestTypeId": draft.request_type_id,
                "requestFieldValues": draft.fields,
            },
        )
        body = response.json()
        try:
            return CreatedRequest(issue_id=str(body["issueId"]), issue_key=str(body["issueKey"]))
        except KeyError:
            raise PermanentError("jira create request answered without issueId/issueKey") from None

    async def set_issue_property(
        self, site: JiraSite, issue_key: str, key: str, value: dict[str, Any]
    ) -> None:
        await self._call(
            site, "set issue property", "PUT", f"/rest/api/3/issue/{issue_key}/properties/{key}", json=value
        )

    async def add_internal_comment(self, site: JiraSite, issue_key: str, body: str) -> None:
        await self._call(
            site,
            "add comment",
            "POST",
            f"/rest/servicedeskapi/request/{issue_key}/comment",
            json={"body": body, "public": False},
        )

    async def has_comment_containing(self, site: JiraSite, issue_key: str, marker: str) -> bool:
        start = 0
        while True:
            response = await self._call(
                site,
                "list comments",
                "GET",
                f"/rest/servicedeskapi/request/{issue_key}/comment",
                params={"public": "false", "internal": "true", "start": start, "limit": 50},
            )
            page = response.json()
            if any(marker in (c.get("body") or "") for c in page.get("values", [])):
                return True
            if page.get("isLastPage", True) or not page.get("values"):
                return False
            start += len(page["values"])

    async def find_request_for_call(self, site: JiraSite, call_sid: str) -> CreatedRequest | None:
        # Requests carry the CallSid in their description, so a request created by an attempt
        # that crashed before recording it in the ledger is found by text search.
        response = await self._call(
            site,
            "search",
            "POST",
            "/rest/api/3/search/jql",
            json={
                "jql": f'created >= -30d AND text ~ "\\"{call_sid}\\""',
                "fields": ["summary"],
                "maxResults": 2,
            },
        )
        issues = response.json().get("issues") or []
        if not issues:
            return None
        return CreatedRequest(issue_id=str(issues[0]["id"]), issue_key=str(issues[0]["key"]))

    async def aclose(self) -> None:
        await self._client.aclose()
