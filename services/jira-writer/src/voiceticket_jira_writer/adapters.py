"""Jira Service Management over its REST APIs (servicedeskapi + platform v3 for properties/search).

Every request holds one of the tenant's Jira slots (``JiraSite.concurrency``, the tenant's
``provider_concurrency.jira``) while it is in flight, and only then: a call's 3-4 requests and the
ledger writes between them take a slot each in turn, and a 429 leaves the handler (the bus waits
out its Retry-After) without one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from voiceticket_common.bus import PermanentError
from voiceticket_common.http import provider_client, transport_error
from voiceticket_common.provider_limits import ProviderLimits, limits
from voiceticket_common.resources import AsyncResource

from .jira_errors import raise_for_jira_status
from .ports import (
    CreatedRequest,
    Customer,
    FieldValue,
    JiraSite,
    RequestDraft,
    RequestStatus,
    RequestTypeField,
    RequestTypeFields,
    Upload,
)

# attachTemporaryFile is multipart, so Jira's XSRF check wants this header; the spec's example also
# opts in to the experimental API, as older docs required for this endpoint and the customer list.
XSRF_OFF = {"X-Atlassian-Token": "no-check"}
EXPERIMENTAL = {"X-ExperimentalApi": "opt-in"}
PAGE = 50


class JsmServiceDesk(AsyncResource):
    def __init__(
        self, allowed_hosts: Sequence[str], timeout: float = 30.0, slots: ProviderLimits = limits
    ) -> None:
        self._client = provider_client("jira", allowed_hosts, timeout=timeout)
        self._slots = slots

    async def _call(
        self,
        site: JiraSite,
        what: str,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        allow_status: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> httpx.Response:
        secret = site.token.get_secret_value()
        all_headers = {"Accept": "application/json", **(headers or {})}
        auth: tuple[str, str] | None = None
        if site.auth == "oauth2":
            all_headers["Authorization"] = f"Bearer {secret}"
        else:
            auth = (site.email, secret)
        try:
            async with self._slots.slot(site.tenant_id, "jira", site.concurrency):
                response = await self._client.request(
                    method, site.base_url.rstrip("/") + path, auth=auth, headers=all_headers, **kwargs
                )
        except httpx.HTTPError as exc:
            raise transport_error(exc, "jira", what) from None
        if response.status_code not in allow_status:
            raise_for_jira_status(response, what, oauth=site.auth == "oauth2")
        return response

    async def _post_internal(
        self, site: JiraSite, what: str, issue_key: str, resource: str, body: dict[str, Any]
    ) -> httpx.Response:
        """POST ``body`` to the request's ``resource`` (comment, attachment), not shown to the customer."""
        return await self._call(
            site,
            what,
            "POST",
            f"/rest/servicedeskapi/request/{issue_key}/{resource}",
            json={**body, "public": False},
        )

    async def request_type_fields(
        self, site: JiraSite, service_desk_id: str, request_type_id: str
    ) -> RequestTypeFields:
        response = await self._call(
            site,
            "request type fields",
            "GET",
            f"/rest/servicedeskapi/servicedesk/{service_desk_id}/requesttype/{request_type_id}/field",
        )
        body = response.json()
        return RequestTypeFields(
            fields=tuple(_field(f) for f in body.get("requestTypeFields") or []),
            can_raise_on_behalf_of=bool(body.get("canRaiseOnBehalfOf")),
        )

    async def find_customers(self, site: JiraSite, service_desk_id: str, query: str) -> list[Customer]:
        response = await self._call(
            site,
            "customer lookup",
            "GET",
            f"/rest/servicedeskapi/servicedesk/{service_desk_id}/customer",
            headers=EXPERIMENTAL,
            params={"query": query, "start": 0, "limit": PAGE},
        )
        return [
            Customer(
                account_id=str(c["accountId"]),
                email=c.get("emailAddress"),
                active=bool(c.get("active", True)),
            )
            for c in response.json().get("values") or []
            if c.get("accountId")
        ]

    async def create_request(self, site: JiraSite, draft: RequestDraft) -> CreatedRequest:
        body: dict[str, Any] = {
            "serviceDeskId": draft.service_desk_id,
            "requestTypeId": draft.request_type_id,
            "requestFieldValues": draft.fields,
        }
        if draft.raise_on_behalf_of:
            body["raiseOnBehalfOf"] = draft.raise_on_behalf_of
        response = await self._call(site, "create request", "POST", "/rest/servicedeskapi/request", json=body)
        created = response.json()
        try:
            return CreatedRequest(issue_id=str(created["issueId"]), issue_key=str(created["issueKey"]))
        except KeyError:
            raise PermanentError("jira create request answered without issueId/issueKey") from None

    async def set_issue_property(
        self, site: JiraSite, issue_key: str, key: str, value: dict[str, Any]
    ) -> None:
        await self._call(
            site, "set issue property", "PUT", f"/rest/api/3/issue/{issue_key}/properties/{key}", json=value
        )

    async def add_internal_comment(self, site: JiraSite, issue_key: str, body: str) -> None:
        await self._post_internal(site, "add comment", issue_key, "comment", {"body": body})

    async def has_comment_containing(self, site: JiraSite, issue_key: str, marker: str) -> bool:
        start = 0
        while True:
            response = await self._call(
                site,
                "list comments",
                "GET",
                f"/rest/servicedeskapi/request/{issue_key}/comment",
                params={"public": "false", "internal": "true", "start": start, "limit": PAGE},
            )
            page = response.json()
            if any(marker in (c.get("body") or "") for c in page.get("values", [])):
                return True
            if page.get("isLastPage", True) or not page.get("values"):
                return False
            start += len(page["values"])

    async def request_status(self, site: JiraSite, issue_key: str) -> RequestStatus | None:
        response = await self._call(
            site, "request status", "GET", f"/rest/servicedeskapi/request/{issue_key}", allow_status=(404,)
        )
        if response.status_code == 404:
            return None
        body = response.json()
        values = {str(v.get("fieldId")): v.get("value") for v in body.get("requestFieldValues") or []}
        status = body.get("currentStatus") or {}
        return RequestStatus(
            issue_id=str(body.get("issueId") or ""),
            issue_key=str(body.get("issueKey") or issue_key),
            summary=str(values.get("summary") or ""),
            done=str(status.get("statusCategory") or "").upper() == "DONE",
        )

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

    async def attachment_names(self, site: JiraSite, issue_key: str) -> set[str]:
        names: set[str] = set()
        start = 0
        while True:
            response = await self._call(
                site,
                "list attachments",
                "GET",
                f"/rest/servicedeskapi/request/{issue_key}/attachment",
                params={"start": start, "limit": PAGE},
            )
            page = response.json()
            values = page.get("values") or []
            names |= {str(a.get("filename")) for a in values}
            if page.get("isLastPage", True) or not values:
                return names
            start += len(values)

    async def attach_internal(
        self, site: JiraSite, service_desk_id: str, issue_key: str, upload: Upload
    ) -> None:
        upload.file.seek(0)
        uploaded = await self._call(
            site,
            "upload temporary file",
            "POST",
            f"/rest/servicedeskapi/servicedesk/{service_desk_id}/attachTemporaryFile",
            headers={**XSRF_OFF, **EXPERIMENTAL},
            files={"file": (upload.filename, upload.file, upload.content_type)},
        )
        temporary = uploaded.json().get("temporaryAttachments") or []
        ids = [str(t["temporaryAttachmentId"]) for t in temporary if t.get("temporaryAttachmentId")]
        if not ids:
            raise PermanentError("jira attachTemporaryFile answered without a temporaryAttachmentId")
        await self._post_internal(
            site, "attach file", issue_key, "attachment", {"temporaryAttachmentIds": ids}
        )

    async def aclose(self) -> None:
        await self._client.aclose()


def _value(raw: dict[str, Any]) -> FieldValue:
    return FieldValue(
        value=str(raw.get("value", "")),
        label=str(raw.get("label", "")),
        children=tuple(_value(c) for c in raw.get("children") or []),
    )


def _field(raw: dict[str, Any]) -> RequestTypeField:
    schema = raw.get("jiraSchema") or {}
    return RequestTypeField(
        field_id=str(raw["fieldId"]),
        name=str(raw.get("name") or raw["fieldId"]),
        required=bool(raw.get("required")),
        visible=bool(raw.get("visible", True)),
        valid_values=tuple(_value(v) for v in raw.get("validValues") or []),
        default_values=tuple(_value(v) for v in raw.get("defaultValues") or []),
        schema_type=str(schema.get("type") or "string"),
        schema_items=schema.get("items"),
    )
