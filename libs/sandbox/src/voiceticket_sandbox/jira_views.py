"""JSON shapes the Jira stand-in answers with (JSM DTOs and platform issue beans)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from voiceticket_sandbox.jira_fields import json_schema_of
from voiceticket_sandbox.state import Issue, RequestType

SANDBOX_USER = {
    "accountId": "557058:sandbox-user",
    "displayName": "Sandbox Integration",
    "active": True,
    "timeZone": "UTC",
}
STATUS = {"status": "Waiting for support", "statusCategory": "NEW"}
_CATEGORY_KEYS = {"NEW": "new", "INDETERMINATE": "indeterminate", "DONE": "done", "UNDEFINED": "undefined"}
"""JSM's status category names and the platform's status category keys."""


def date_dto(timestamp: float | None = None) -> dict[str, Any]:
    """JSM ``DateDTO``."""
    moment = datetime.fromtimestamp(timestamp or time.time(), tz=UTC)
    return {
        "iso8601": moment.strftime("%Y-%m-%dT%H:%M:%S+0000"),
        "jira": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000",
        "friendly": moment.strftime("%d/%b/%y %I:%M %p"),
        "epochMillis": int(moment.timestamp() * 1000),
    }


def customer_request(issue: Issue, base_url: str, request_type: RequestType | None) -> dict[str, Any]:
    """JSM ``CustomerRequestDTO``."""
    names = {f["fieldId"]: f["name"] for f in (request_type.fields if request_type else [])}
    return {
        "_expands": ["participant", "status", "sla", "requestType", "serviceDesk", "attachment", "action", "comment"],
        "issueId": issue.id,
        "issueKey": issue.key,
        "requestTypeId": issue.request_type_id,
        "serviceDeskId": issue.service_desk_id,
        "createdDate": date_dto(issue.created),
        "reporter": SANDBOX_USER,
        "requestFieldValues": [
            {"fieldId": field_id, "label": names.get(field_id, field_id), "value": value}
            for field_id, value in issue.request_field_values.items()
        ],
        "currentStatus": {
            "status": issue.status,
            "statusCategory": issue.status_category,
            "statusDate": date_dto(issue.created),
        },
        "_links": {
            "jiraRest": f"{base_url}/rest/api/2/issue/{issue.id}",
            "web": f"{base_url}/servicedesk/customer/portal/{issue.service_desk_id}/{issue.key}",
            "self": f"{base_url}/rest/servicedeskapi/request/{issue.id}",
        },
    }  # fmt: skip


def comment(entry: dict[str, Any], base_url: str, issue: Issue) -> dict[str, Any]:
    """JSM ``CommentDTO``."""
    return {
        "id": entry["id"],
        "body": entry["body"],
        "public": entry["public"],
        "author": SANDBOX_USER,
        "created": date_dto(entry["created"]),
        "_links": {"self": f"{base_url}/rest/servicedeskapi/request/{issue.id}/comment/{entry['id']}"},
    }


def attachment(entry: dict[str, Any]) -> dict[str, Any]:
    """JSM ``AttachmentDTO``."""
    return {
        "filename": entry["filename"],
        "author": SANDBOX_USER,
        "created": date_dto(entry["created"]),
        "size": entry["size"],
        "mimeType": entry["mimeType"],
        "_links": {},
    }


def request_type_fields(request_type: RequestType) -> dict[str, Any]:
    """JSM ``CustomerRequestCreateMetaDTO``."""
    return {
        "canRaiseOnBehalfOf": request_type.can_raise_on_behalf_of,
        "canAddRequestParticipants": True,
        "requestTypeFields": [
            {
                "fieldId": f["fieldId"],
                "name": f["name"],
                "description": "",
                "required": bool(f.get("required")),
                "visible": f.get("visible", True),
                "validValues": f.get("validValues") or [],
                "presetValues": f.get("presetValues") or [],
                "defaultValues": f.get("defaultValues") or [],
                "jiraSchema": json_schema_of(f),
            }
            for f in request_type.fields
        ],
    }


def customer(entry: dict[str, Any]) -> dict[str, Any]:
    """JSM ``UserDTO`` of a service desk customer."""
    return {
        "accountId": entry["accountId"],
        "emailAddress": entry.get("emailAddress"),
        "displayName": entry.get("displayName", ""),
        "active": entry.get("active", True),
        "timeZone": "UTC",
        "_links": {},
    }


def search_issue(issue: Issue, base_url: str, fields: list[str], properties: list[str]) -> dict[str, Any]:
    """A platform ``IssueBean`` with the requested fields and properties."""
    available = {
        "summary": issue.request_field_values.get("summary"),
        "description": issue.request_field_values.get("description"),
        "status": {"name": issue.status, "statusCategory": {"key": _CATEGORY_KEYS[issue.status_category]}},
        "project": {"key": issue.key.rsplit("-", 1)[0]},
        "created": date_dto(issue.created)["jira"],
        **{k: v for k, v in issue.request_field_values.items() if k not in ("summary", "description")},
    }
    wanted = list(available) if {"*all", "*navigable"} & set(fields) else fields
    bean: dict[str, Any] = {
        "id": issue.id,
        "key": issue.key,
        "self": f"{base_url}/rest/api/3/issue/{issue.id}",
        "fields": {name: available[name] for name in wanted if name in available},
    }
    if properties:
        bean["properties"] = {k: issue.properties[k] for k in properties if k in issue.properties}
    return bean


def paged(values: list[Any], start: int, limit: int) -> dict[str, Any]:
    """JSM ``PagedDTO``."""
    page = values[start : start + limit]
    return {
        "size": len(page),
        "start": start,
        "limit": limit,
        "isLastPage": start + limit >= len(values),
        "values": page,
    }


def issue_summary(issue: Issue) -> dict[str, Any]:
    """What ``GET /_sandbox/issues`` shows of one issue."""
    return {
        "id": issue.id,
        "key": issue.key,
        "serviceDeskId": issue.service_desk_id,
        "requestTypeId": issue.request_type_id,
        "requestFieldValues": issue.request_field_values,
        "raiseOnBehalfOf": issue.raise_on_behalf_of,
        "properties": issue.properties,
        "comments": [{"body": c["body"], "public": c["public"]} for c in issue.comments],
        "attachments": [
            {"filename": a["filename"], "size": a["size"], "public": a["public"]} for a in issue.attachments
        ],
    }
