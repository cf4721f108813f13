"""Jira Cloud / Jira Service Management stand-in: the endpoints Voice to Ticket uses.

JSM (``/rest/servicedeskapi``): service desks, request types and their fields, a desk's customers,
create and read customer requests, comments, temporary files and attachments. Platform
(``/rest/api/3``): issue properties and ``POST /search/jql`` (see ``jql`` for the supported subset).
Service desks, request types, customers and credentials are configured through ``/_sandbox/``;
nothing exists until configured. The same API answers under ``/ex/jira/<cloudId>`` for OAuth 2.0
bearer tokens (see ``jira_gateway``).

A request type without configured fields gets ``summary`` (required) and ``description``; fields a
request type does not have, values outside a field's ``validValues``, missing required fields and a
``raiseOnBehalfOf`` the request type or desk does not allow are refused with 400 (see
``jira_fields``), so a writer that sends what the desk does not take fails here rather than in
production. ``POST /_sandbox/attachment-settings`` sets the site's attachment size limit.

Search lags writes as Jira's index does when told to: ``POST /_sandbox/search-index`` with
``lag_seconds`` (new issues are found that long after their creation) or ``paused`` (not found until
the index is resumed with ``paused: false``, which indexes them at once); ``GET`` shows the setting.

``POST /_sandbox/issues/{key}/status`` moves a request as an agent would; with a webhook registered
(``POST /_sandbox/webhooks``: URL and secret) each move is sent there, signed as Jira Cloud signs
admin webhooks (``jira_webhooks``), and ``POST /_sandbox/webhooks/redeliver`` repeats the last delivery.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from voiceticket_sandbox import jira_views as views
from voiceticket_sandbox.contracts import JIRA
from voiceticket_sandbox.control import control_router
from voiceticket_sandbox.jira_fields import FieldIn, configured_fields, field_problem
from voiceticket_sandbox.jira_gateway import OAuthGateway, authorized
from voiceticket_sandbox.jira_webhooks import JiraWebhooks
from voiceticket_sandbox.jql import JqlError, compile_jql
from voiceticket_sandbox.recorder import SandboxMiddleware
from voiceticket_sandbox.state import (
    Issue,
    JiraState,
    RequestType,
    SandboxState,
    SearchIndex,
    ServiceDesk,
)

JSM = "/rest/servicedeskapi"
PLATFORM = "/rest/api/3"
MAX_PROPERTY_CHARS = 32768
MAX_PROPERTY_KEY = 255


def jira_error(status: int, messages: list[str], path: str = "") -> Any:
    """JSM's error body on ``/rest/servicedeskapi``, the platform's elsewhere."""
    if path.startswith(JSM):
        return {
            "errorMessage": "; ".join(messages),
            "i18nErrorMessage": {"i18nKey": f"sd.sandbox.error.{status}", "parameters": []},
        }
    return {"errorMessages": messages, "errors": {}}


def _error(status: int, message: str, path: str) -> JSONResponse:
    return JSONResponse(jira_error(status, [message], path), status_code=status)


def _customer_request(jira: JiraState, issue_id_or_key: str, request: Request) -> Issue | JSONResponse:
    """The customer request the caller asked for, or JSM's 401 or 404 answer."""
    path = request.url.path
    if not authorized(jira, request):
        return _error(401, "Unauthorized", path)
    issue = jira.find_issue(issue_id_or_key)
    if issue is None:
        return _error(404, f"The request {issue_id_or_key} does not exist.", path)
    return issue


class CredentialsIn(BaseModel):
    """Body of ``POST /_sandbox/credentials``."""

    email: str
    api_token: str


class OAuthTokenIn(BaseModel):
    """Body of ``POST /_sandbox/oauth``: an OAuth 2.0 access token good for one cloud id."""

    cloud_id: str
    access_token: str


class CustomerIn(BaseModel):
    """One customer of a service desk (a JSM ``UserDTO``)."""

    accountId: str
    emailAddress: str | None = None
    displayName: str = ""
    active: bool = True


class RequestTypeIn(BaseModel):
    """One request type of a service desk."""

    id: str
    name: str
    fields: list[FieldIn] | None = None
    can_raise_on_behalf_of: bool = True


class ServiceDeskIn(BaseModel):
    """Body of ``POST /_sandbox/servicedesks``."""

    id: str
    project_key: str
    request_types: list[RequestTypeIn] = Field(default_factory=list)
    customers: list[CustomerIn] = Field(default_factory=list)


class SearchIndexIn(BaseModel):
    """Body of ``POST /_sandbox/search-index``."""

    lag_seconds: float = Field(default=0.0, ge=0)
    paused: bool = False


class IssueStatusIn(BaseModel):
    """Body of ``POST /_sandbox/issues/{key}/status``: what an agent moved the request to."""

    status: str = Field(min_length=1)
    category: str = Field(pattern="^(NEW|INDETERMINATE|DONE)$")


class WebhookIn(BaseModel):
    """Body of ``POST /_sandbox/webhooks``: an admin webhook with a secret (``jira_webhooks``)."""

    url: str = Field(min_length=1)
    secret: str = Field(min_length=1)


class AttachmentSettingsIn(BaseModel):
    """Body of ``POST /_sandbox/attachment-settings``."""

    max_bytes: int | None = None


def create_jira_app(state: SandboxState | None = None) -> FastAPI:
    """The Jira/JSM stand-in as an ASGI app; pass a shared state to run it beside the others."""
    state = state or SandboxState()
    app = FastAPI(title="Jira sandbox", docs_url="/_sandbox/docs", openapi_url="/_sandbox/openapi.json")
    app.state.sandbox = state
    app.add_middleware(SandboxMiddleware, state=state, service=JIRA, spec_name=JIRA, error_body=jira_error)
    app.include_router(control_router(state, JIRA))
    app.include_router(_jira_control(state.jira))
    app.include_router(_jsm_api(state.jira))
    app.include_router(_platform_api(state.jira))
    # Added last, so it runs first: the spec check and the routes see /rest/... paths.
    app.add_middleware(OAuthGateway, jira=state.jira)
    return app


def _jira_control(jira: JiraState) -> APIRouter:
    router = APIRouter(prefix="/_sandbox")
    hooks = JiraWebhooks()

    @router.post("/webhooks", status_code=201)
    async def add_webhook(body: WebhookIn) -> dict[str, str]:
        hooks.register(body.url, body.secret)
        return {"url": body.url}

    @router.post("/webhooks/redeliver")
    async def redeliver_webhook() -> dict[str, int | None]:
        return {"status": await hooks.redeliver()}

    @router.get("/webhooks/deliveries")
    async def webhook_deliveries() -> list[dict[str, Any]]:
        return [{"url": d.url, "status": a} for d, a in zip(hooks.deliveries, hooks.answers, strict=False)]

    @router.post("/credentials", status_code=201)
    async def add_credentials(body: CredentialsIn) -> dict[str, str]:
        jira.credentials[body.email] = body.api_token
        return {"email": body.email}

    @router.post("/oauth", status_code=201)
    async def add_oauth_token(body: OAuthTokenIn) -> dict[str, str]:
        jira.oauth_tokens[body.access_token] = body.cloud_id
        return {"cloud_id": body.cloud_id}

    @router.post("/attachment-settings")
    async def attachment_settings(body: AttachmentSettingsIn) -> dict[str, int | None]:
        jira.max_attachment_bytes = body.max_bytes
        return {"max_bytes": body.max_bytes}

    @router.post("/search-index")
    async def search_index(body: SearchIndexIn) -> dict[str, Any]:
        jira.search_index = SearchIndex(lag_seconds=body.lag_seconds, paused=body.paused)
        if not body.paused:
            now = time.time()
            for issue in jira.issues.values():
                if issue.indexed_at is None:
                    issue.indexed_at = now
        return {"lag_seconds": body.lag_seconds, "paused": body.paused}

    @router.get("/search-index")
    async def get_search_index() -> dict[str, Any]:
        return {"lag_seconds": jira.search_index.lag_seconds, "paused": jira.search_index.paused}

    @router.post("/servicedesks", status_code=201)
    async def add_service_desk(body: ServiceDeskIn) -> dict[str, Any]:
        jira.service_desks[body.id] = ServiceDesk(
            id=body.id,
            project_key=body.project_key.upper(),
            request_types={
                rt.id: RequestType(
                    id=rt.id,
                    name=rt.name,
                    fields=configured_fields(rt.fields),
                    can_raise_on_behalf_of=rt.can_raise_on_behalf_of,
                )
                for rt in body.request_types
            },
            customers=[c.model_dump() for c in body.customers],
        )
        return {"id": body.id, "project_key": body.project_key.upper()}

    @router.get("/issues")
    async def issues() -> list[dict[str, Any]]:
        return [views.issue_summary(issue) for issue in jira.issues.values()]

    @router.post("/issues/{key}/status")
    async def set_issue_status(key: str, body: IssueStatusIn, request: Request) -> Response:
        issue = jira.find_issue(key)
        if issue is None:
            return _error(404, f"The request {key} does not exist.", f"/_sandbox/issues/{key}/status")
        from_status = issue.status
        issue.status, issue.status_category = body.status, body.category
        if from_status != issue.status:  # a transition: the registered webhooks hear of it
            await hooks.status_changed(issue, from_status, _base(request))
        return JSONResponse({"key": issue.key, "status": issue.status, "category": issue.status_category})

    return router


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _jsm_api(jira: JiraState) -> APIRouter:
    router = APIRouter(prefix=JSM)

    @router.get("/servicedesk")
    async def service_desks(request: Request, start: int = 0, limit: int = 50) -> Response:
        if not authorized(jira, request):
            return _error(401, "Unauthorized", request.url.path)
        values = [
            {"id": d.id, "projectId": d.id, "projectName": d.project_key, "projectKey": d.project_key}
            for d in jira.service_desks.values()
        ]
        return JSONResponse(views.paged(values, start, limit))

    @router.get("/servicedesk/{serviceDeskId}/requesttype")
    async def request_types(
        serviceDeskId: str, request: Request, start: int = 0, limit: int = 50
    ) -> Response:
        if not authorized(jira, request):
            return _error(401, "Unauthorized", request.url.path)
        desk = jira.service_desks.get(serviceDeskId)
        if desk is None:
            return _error(404, f"The service desk {serviceDeskId} does not exist.", request.url.path)
        values = [
            {"id": rt.id, "name": rt.name, "description": "", "serviceDeskId": desk.id, "groupIds": []}
            for rt in desk.request_types.values()
        ]
        return JSONResponse(views.paged(values, start, limit))

    @router.get("/servicedesk/{serviceDeskId}/requesttype/{requestTypeId}/field")
    async def request_type_fields(serviceDeskId: str, requestTypeId: str, request: Request) -> Response:
        if not authorized(jira, request):
            return _error(401, "Unauthorized", request.url.path)
        desk = jira.service_desks.get(serviceDeskId)
        request_type = desk.request_types.get(requestTypeId) if desk else None
        if request_type is None:
            return _error(404, "The request type does not exist.", request.url.path)
        return JSONResponse(views.request_type_fields(request_type))

    @router.get("/servicedesk/{serviceDeskId}/customer")
    async def customers(serviceDeskId: str, request: Request, start: int = 0, limit: int = 50) -> Response:
        if not authorized(jira, request):
            return _error(401, "Unauthorized", request.url.path)
        desk = jira.service_desks.get(serviceDeskId)
        if desk is None:
            return _error(404, f"The service desk {serviceDeskId} does not exist.", request.url.path)
        # JSM matches the query against displayName, name and email, as a substring
        query = (request.query_params.get("query") or "").lower()
        found = [
            views.customer(c)
            for c in desk.customers
            if not query
            or query in (c.get("emailAddress") or "").lower()
            or query in c.get("displayName", "").lower()
        ]
        return JSONResponse(views.paged(found, start, limit))

    @router.post("/request")
    async def create_request(request: Request) -> Response:
        path = request.url.path
        if not authorized(jira, request):
            return _error(401, "Unauthorized", path)
        body = await request.json()
        desk = jira.service_desks.get(str(body.get("serviceDeskId")))
        if desk is None:
            return _error(404, f"The service desk {body.get('serviceDeskId')} does not exist.", path)
        request_type = desk.request_types.get(str(body.get("requestTypeId")))
        if request_type is None:
            return _error(400, f"The request type {body.get('requestTypeId')} does not exist.", path)
        values = body.get("requestFieldValues") or {}
        problem = field_problem(request_type, values) or _on_behalf_problem(
            desk, request_type, body.get("raiseOnBehalfOf")
        )
        if problem:
            return _error(400, problem, path)
        issue = _new_issue(jira, desk, request_type, values, body.get("raiseOnBehalfOf"))
        return JSONResponse(views.customer_request(issue, _base(request), request_type), status_code=201)

    @router.get("/request/{issueIdOrKey}")
    async def get_request(issueIdOrKey: str, request: Request) -> Response:
        issue = _customer_request(jira, issueIdOrKey, request)
        if isinstance(issue, Response):
            return issue
        desk = jira.service_desks[issue.service_desk_id]
        request_type = desk.request_types.get(issue.request_type_id)
        return JSONResponse(views.customer_request(issue, _base(request), request_type))

    @router.get("/request/{issueIdOrKey}/comment")
    async def list_comments(issueIdOrKey: str, request: Request) -> Response:
        issue = _customer_request(jira, issueIdOrKey, request)
        if isinstance(issue, Response):
            return issue
        query = request.query_params
        wanted = [
            c
            for c in issue.comments
            if (c["public"] and query.get("public", "true") != "false")
            or (not c["public"] and query.get("internal", "true") != "false")
        ]
        start, limit = int(query.get("start", 0)), int(query.get("limit", 50))
        page = wanted[start : start + limit]
        return JSONResponse(
            {
                "size": len(page),
                "start": start,
                "limit": limit,
                "isLastPage": start + limit >= len(wanted),
                "values": [views.comment(c, _base(request), issue) for c in page],
                "_links": {},
            }
        )

    @router.post("/request/{issueIdOrKey}/comment")
    async def add_comment(issueIdOrKey: str, request: Request) -> Response:
        issue = _customer_request(jira, issueIdOrKey, request)
        if isinstance(issue, Response):
            return issue
        body = await request.json()
        if not body.get("body"):
            return _error(400, "The comment body must not be empty.", request.url.path)
        entry = _new_comment(jira, issue, body["body"], bool(body.get("public", True)))
        return JSONResponse(views.comment(entry, _base(request), issue), status_code=201)

    @router.post("/servicedesk/{serviceDeskId}/attachTemporaryFile")
    async def attach_temporary_file(serviceDeskId: str, request: Request) -> Response:
        path = request.url.path
        if not authorized(jira, request):
            return _error(401, "Unauthorized", path)
        if request.headers.get("x-atlassian-token", "").lower() != "no-check":
            return _error(403, "XSRF check failed: send the header X-Atlassian-Token: no-check", path)
        if serviceDeskId not in jira.service_desks:
            return _error(404, f"The service desk {serviceDeskId} does not exist.", path)
        form = await request.form()
        uploaded = []
        for upload in form.getlist("file"):
            if isinstance(upload, str):
                continue
            temporary_id = f"temp{secrets.randbelow(10**18)}"
            data = await upload.read()
            if jira.max_attachment_bytes is not None and len(data) > jira.max_attachment_bytes:
                message = f"The file {upload.filename} exceeds the maximum configured attachment size."
                return _error(400, message, path)
            jira.temporary_files[temporary_id] = {
                "filename": upload.filename or "file",
                "size": len(data),
                "mimeType": upload.content_type or "application/octet-stream",
            }
            uploaded.append({"temporaryAttachmentId": temporary_id, "fileName": upload.filename})
        if not uploaded:
            return _error(400, "No attachments were sent in the 'file' part.", path)
        return JSONResponse({"temporaryAttachments": uploaded}, status_code=201)

    @router.get("/request/{issueIdOrKey}/attachment")
    async def list_attachments(
        issueIdOrKey: str, request: Request, start: int = 0, limit: int = 50
    ) -> Response:
        issue = _customer_request(jira, issueIdOrKey, request)
        if isinstance(issue, Response):
            return issue
        return JSONResponse(views.paged([views.attachment(a) for a in issue.attachments], start, limit))

    @router.post("/request/{issueIdOrKey}/attachment")
    async def attach(issueIdOrKey: str, request: Request) -> Response:
        path = request.url.path
        issue = _customer_request(jira, issueIdOrKey, request)
        if isinstance(issue, Response):
            return issue
        body = await request.json()
        ids = body.get("temporaryAttachmentIds") or []
        unknown = [i for i in ids if i not in jira.temporary_files]
        if not ids or unknown:
            return _error(400, f"Unknown temporary attachment ids: {unknown or ids}", path)
        public = bool(body.get("public", True))
        added = []
        for temporary_id in ids:
            entry = {**jira.temporary_files.pop(temporary_id), "public": public, "created": time.time()}
            issue.attachments.append(entry)
            added.append(views.attachment(entry))
        comment_text = (body.get("additionalComment") or {}).get("body")
        comment = _new_comment(jira, issue, comment_text, public) if comment_text else None
        return JSONResponse(
            {
                "comment": views.comment(comment, _base(request), issue) if comment else None,
                "attachments": views.paged(added, 0, len(added)),
            },
            status_code=201,
        )

    return router


def _platform_api(jira: JiraState) -> APIRouter:
    router = APIRouter(prefix=PLATFORM)

    @router.put("/issue/{issueIdOrKey}/properties/{propertyKey}")
    async def set_property(issueIdOrKey: str, propertyKey: str, request: Request) -> Response:
        path = request.url.path
        if not authorized(jira, request):
            return _error(401, "Unauthorized", path)
        issue = jira.find_issue(issueIdOrKey)
        if issue is None:
            return _error(404, "Issue does not exist or you do not have permission to see it.", path)
        raw = (await request.body()).decode("utf-8")
        if len(propertyKey) > MAX_PROPERTY_KEY:
            return _error(
                400, f"The property key can not be longer than {MAX_PROPERTY_KEY} characters.", path
            )
        if len(raw) > MAX_PROPERTY_CHARS:
            return _error(
                400, f"The property value can not be longer than {MAX_PROPERTY_CHARS} characters.", path
            )
        existed = propertyKey in issue.properties
        issue.properties[propertyKey] = json.loads(raw)
        # Jira answers these with an empty body; clients must not parse it
        return Response(status_code=200 if existed else 201)

    @router.get("/issue/{issueIdOrKey}/properties/{propertyKey}")
    async def get_property(issueIdOrKey: str, propertyKey: str, request: Request) -> Response:
        path = request.url.path
        if not authorized(jira, request):
            return _error(401, "Unauthorized", path)
        issue = jira.find_issue(issueIdOrKey)
        if issue is None or propertyKey not in issue.properties:
            return _error(404, "The issue or property was not found.", path)
        return JSONResponse({"key": propertyKey, "value": issue.properties[propertyKey]})

    @router.post("/search/jql")
    async def search(request: Request) -> Response:
        path = request.url.path
        if not authorized(jira, request):
            return _error(401, "Unauthorized", path)
        body = await request.json()
        try:
            matches = compile_jql(body.get("jql", ""))
        except JqlError as exc:
            return _error(400, str(exc), path)
        now = time.time()
        found = [
            issue
            for issue in jira.issues.values()
            if issue.indexed_at is not None and issue.indexed_at <= now and matches(issue)
        ]
        start = int(body.get("nextPageToken") or 0)
        limit = int(body.get("maxResults") or 50)
        fields = body.get("fields") or ["id"]
        properties = body.get("properties") or []
        page = [
            views.search_issue(i, _base(request), fields, properties) for i in found[start : start + limit]
        ]
        result: dict[str, Any] = {"issues": page, "isLast": start + limit >= len(found)}
        if not result["isLast"]:
            result["nextPageToken"] = str(start + limit)
        return JSONResponse(result)

    return router


def _on_behalf_problem(desk: ServiceDesk, request_type: RequestType, account_id: str | None) -> str | None:
    if account_id is None:
        return None
    if not request_type.can_raise_on_behalf_of:
        return "You do not have permission to raise requests on behalf of other customers."
    if not any(c["accountId"] == account_id for c in desk.customers):
        return f"The user '{account_id}' is not a customer of this service project."
    return None


def _new_issue(
    jira: JiraState,
    desk: ServiceDesk,
    request_type: RequestType,
    values: dict[str, Any],
    raise_on_behalf_of: str | None,
) -> Issue:
    number = jira.next_issue_number.get(desk.project_key, 1)
    jira.next_issue_number[desk.project_key] = number + 1
    jira.next_issue_id += 1
    issue = Issue(
        id=str(jira.next_issue_id),
        key=f"{desk.project_key}-{number}",
        service_desk_id=desk.id,
        request_type_id=request_type.id,
        request_field_values=dict(values),
        created=time.time(),
        raise_on_behalf_of=raise_on_behalf_of,
    )
    index = jira.search_index
    issue.indexed_at = None if index.paused else issue.created + index.lag_seconds
    jira.issues[issue.id] = issue
    return issue


def _new_comment(jira: JiraState, issue: Issue, body: str, public: bool) -> dict[str, Any]:
    jira.next_comment_id += 1
    entry = {"id": str(jira.next_comment_id), "body": body, "public": public, "created": time.time()}
    issue.comments.append(entry)
    return entry
