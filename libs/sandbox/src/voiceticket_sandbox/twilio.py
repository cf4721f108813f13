"""Twilio stand-in: recording media and metadata downloads and deletion, sending SMS (Messages.json),
and fetching the account (``{Sid}.json``, what a connection test reads).

Recording media is served as stored: the sandbox does not transcode, so ``.wav`` and ``.mp3`` return
the same bytes with the content type they were registered with. Unlike Twilio's default (public media
URLs), media always needs HTTP basic auth here, as with "Enforce HTTP Auth on Media URLs".

``GET .../Messages.json`` lists sent messages newest first, filtered by ``To`` and ``From`` and
paged (``PageSize``, ``next_page_uri``), as a sender that lost a send's outcome looks them up.

Fault knobs beyond the common ones (``/_sandbox/faults``): ``/_sandbox/media-faults`` makes media
404 while young or for its first requests, or cuts/truncates downloads; ``/_sandbox/delivery-outcome``
sets the statuses (and ErrorCode) each message's StatusCallback reports. Messages report
``num_segments`` as Twilio counts them: GSM-7 (160, or 153 per concatenated segment) or UCS-2 (70/67).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import re
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.types import Receive, Scope, Send

from voiceticket_sandbox.contracts import TWILIO
from voiceticket_sandbox.control import control_router
from voiceticket_sandbox.jira_gateway import basic_credentials
from voiceticket_sandbox.recorder import SandboxMiddleware
from voiceticket_sandbox.state import DeliveryOutcome, MediaFaults, SandboxState, StoredRecording
from voiceticket_sandbox.twilio_webhooks import rfc2822, send_webhook

API = "/2010-04-01/Accounts/{AccountSid}"
MAX_BODY_CHARS = 1600
_E164 = re.compile(r"^(?:[a-z]+:)?\+[1-9]\d{6,14}$")
_CODES = {400: 20001, 401: 20003, 403: 20403, 404: 20404, 429: 20429}


def twilio_error(status: int, messages: list[str], path: str = "", code: int | None = None) -> Any:
    """Twilio's REST error body."""
    code = code or _CODES.get(status, 20000 + status if status >= 500 else 20001)
    return {
        "code": code,
        "message": "; ".join(messages),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _error(status: int, message: str, code: int | None = None) -> JSONResponse:
    return JSONResponse(twilio_error(status, [message], code=code), status_code=status)


class AccountIn(BaseModel):
    """Body of ``POST /_sandbox/accounts``."""

    account_sid: str
    auth_token: str


class RecordingIn(BaseModel):
    """Body of ``POST /_sandbox/recordings``."""

    account_sid: str
    recording_sid: str
    audio_base64: str
    content_type: str = "audio/x-wav"
    transcript: str = ""
    call_sid: str | None = None
    duration: int = 0


class NumberIn(BaseModel):
    """Body of ``POST /_sandbox/opted-out``."""

    number: str


class MediaFaultsIn(BaseModel):
    """Body of ``POST /_sandbox/media-faults``: applies to every recording until DELETE."""

    unavailable_seconds: float = Field(default=0.0, ge=0, description="404 until a recording is this old")
    unavailable_requests: int = Field(default=0, ge=0, description="404 for each recording's first N GETs")
    partial: Literal["cut", "short"] | None = Field(
        default=None,
        description="cut: full Content-Length, half the body, connection dropped; "
        "short: half the body with a matching Content-Length (a truncated WAV)",
    )
    partial_times: int | None = Field(default=1, ge=1, description="None: every download")


class DeliveryOutcomeIn(BaseModel):
    """Body of ``POST /_sandbox/delivery-outcome``."""

    statuses: list[str] = Field(default_factory=lambda: ["sent", "delivered"], min_length=1)
    error_code: int | None = None


def create_twilio_app(state: SandboxState | None = None) -> FastAPI:
    """The Twilio stand-in as an ASGI app; pass a shared state to run it beside the others."""
    state = state or SandboxState()
    app = FastAPI(title="Twilio sandbox", docs_url="/_sandbox/docs", openapi_url="/_sandbox/openapi.json")
    app.state.sandbox = state
    app.add_middleware(
        SandboxMiddleware, state=state, service=TWILIO, spec_name=TWILIO, error_body=twilio_error
    )
    app.include_router(control_router(state, TWILIO))
    app.include_router(_twilio_control(state))
    app.include_router(_twilio_api(state))
    return app


def _twilio_control(state: SandboxState) -> APIRouter:
    router = APIRouter(prefix="/_sandbox")

    @router.post("/accounts", status_code=201)
    async def add_account(body: AccountIn) -> dict[str, str]:
        state.twilio.accounts[body.account_sid] = body.auth_token
        return {"account_sid": body.account_sid}

    @router.post("/recordings", status_code=201)
    async def add_recording(body: RecordingIn) -> dict[str, Any]:
        # the transcript is keyed by the audio's sha256: the same bytes registered again with
        # another transcript replace the earlier one, which the answer reports
        audio = base64.b64decode(body.audio_base64)
        state.twilio.recordings[(body.account_sid, body.recording_sid)] = StoredRecording(
            account_sid=body.account_sid,
            recording_sid=body.recording_sid,
            audio=audio,
            content_type=body.content_type,
            call_sid=body.call_sid,
            duration=body.duration,
            created=time.time(),
        )
        digest = hashlib.sha256(audio).hexdigest()
        replaced = state.openai.transcripts.get(digest, body.transcript) != body.transcript
        state.openai.transcripts[digest] = body.transcript
        return {
            "recording_sid": body.recording_sid,
            "sha256": digest,
            "size": len(audio),
            "transcript_replaced": replaced,
        }

    @router.post("/opted-out", status_code=201)
    async def add_opted_out(body: NumberIn) -> dict[str, str]:
        state.twilio.opted_out.add(body.number)
        return {"number": body.number}

    @router.get("/messages")
    async def sent_messages() -> list[dict[str, Any]]:
        return state.twilio.messages

    @router.get("/media-faults")
    async def get_media_faults() -> dict[str, Any]:
        return {**asdict(state.twilio.media_faults), "requests": state.twilio.media_requests}

    for path, attr, body_model, value_model, names in (
        (
            "/media-faults",
            "media_faults",
            MediaFaultsIn,
            MediaFaults,
            ("set_media_faults", "clear_media_faults"),
        ),
        (
            "/delivery-outcome",
            "delivery",
            DeliveryOutcomeIn,
            DeliveryOutcome,
            ("set_delivery_outcome", "reset_delivery_outcome"),
        ),
    ):
        _add_setting_routes(router, state, path, attr, body_model, value_model, names)
    return router


def _add_setting_routes(
    router: APIRouter,
    state: SandboxState,
    path: str,
    attr: str,
    body_model: type[BaseModel],
    value_model: Callable[..., Any],
    names: tuple[str, str],
) -> None:
    """POST ``path`` replaces ``state.twilio.<attr>`` with a ``value_model`` made from the body (a
    ``body_model``) and answers it; DELETE puts the default back."""

    async def set_value(body: BaseModel) -> dict[str, Any]:
        setattr(state.twilio, attr, value_model(**body.model_dump()))
        return asdict(getattr(state.twilio, attr))

    async def reset_value() -> dict[str, str]:
        setattr(state.twilio, attr, value_model())
        return {"status": "ok"}

    set_value.__annotations__["body"] = body_model  # FastAPI validates the body against this model
    router.add_api_route(path, set_value, methods=["POST"], status_code=201, name=names[0])
    router.add_api_route(path, reset_value, methods=["DELETE"], name=names[1])


def _authorized(state: SandboxState, request: Request, account_sid: str) -> bool:
    basic = basic_credentials(request)
    if basic is None:
        return False
    user, token = basic
    expected = state.twilio.accounts.get(user)
    return user == account_sid and expected is not None and secrets.compare_digest(expected, token)


def _twilio_api(state: SandboxState) -> APIRouter:
    router = APIRouter()
    callbacks: set[asyncio.Task[None]] = set()

    @router.get("/2010-04-01/Accounts/{account_file}")
    async def fetch_account(account_file: str, request: Request) -> Response:
        # FetchAccount (what a connection test reads); Twilio's answer holds the auth token too.
        sid, _, extension = account_file.partition(".")
        if extension != "json":
            return _error(404, f"The requested resource {request.url.path} was not found")
        if not _authorized(state, request, sid):
            return _error(401, "Authenticate")
        return JSONResponse(_account_json(sid, state.twilio.accounts[sid]))

    @router.get(API + "/Recordings/{recording_file}")
    async def get_recording(AccountSid: str, recording_file: str, request: Request) -> Response:
        if not _authorized(state, request, AccountSid):
            return _error(401, "Authenticate")
        sid, _, extension = recording_file.partition(".")
        stored = state.twilio.recordings.get((AccountSid, sid))
        if stored is None or extension not in ("", "wav", "mp3", "json"):
            return _error(404, f"The requested resource {request.url.path} was not found")
        if extension == "json":
            return JSONResponse(_recording_json(stored, str(request.base_url).rstrip("/")))
        faults = state.twilio.media_faults
        seen = state.twilio.media_requests.get(sid, 0)
        state.twilio.media_requests[sid] = seen + 1
        if seen < faults.unavailable_requests or time.time() - stored.created < faults.unavailable_seconds:
            return _error(404, f"The requested resource {request.url.path} was not found")
        if faults.partial and (faults.partial_times is None or faults.partial_served < faults.partial_times):
            faults.partial_served += 1
            half = stored.audio[: len(stored.audio) // 2]
            if faults.partial == "short":
                return Response(half, media_type=stored.content_type)
            return _CutResponse(half, len(stored.audio), stored.content_type)
        return Response(stored.audio, media_type=stored.content_type)

    @router.delete(API + "/Recordings/{recording_file}")
    async def delete_recording(AccountSid: str, recording_file: str, request: Request) -> Response:
        # DeleteRecording: media and metadata go; a second DELETE is a 404, as at Twilio.
        if not _authorized(state, request, AccountSid):
            return _error(401, "Authenticate")
        sid, _, extension = recording_file.partition(".")
        if extension != "json" or state.twilio.recordings.pop((AccountSid, sid), None) is None:
            return _error(404, f"The requested resource {request.url.path} was not found")
        return Response(status_code=204)

    @router.get(API + "/Messages.json")
    async def list_messages(AccountSid: str, request: Request) -> Response:
        if not _authorized(state, request, AccountSid):
            return _error(401, "Authenticate")
        query = request.query_params
        found = [
            m
            for m in reversed(state.twilio.messages)
            if m["account_sid"] == AccountSid
            and (not query.get("To") or m["to"] == query["To"])
            and (not query.get("From") or m["from"] == query["From"])
        ]
        size = min(max(int(query.get("PageSize") or 50), 1), 1000)
        page = int(query.get("Page") or 0)
        uri = f"/2010-04-01/Accounts/{AccountSid}/Messages.json"
        filters = {k: query[k] for k in ("To", "From") if query.get(k)}

        def page_uri(number: int) -> str:
            return f"{uri}?{urlencode({**filters, 'PageSize': size, 'Page': number, 'PageToken': f'PT{number}'})}"

        chunk = found[page * size : (page + 1) * size]
        return JSONResponse(
            {
                "messages": [_listed(m) for m in chunk],
                "end": page * size + max(len(chunk) - 1, 0),
                "first_page_uri": page_uri(0),
                "next_page_uri": page_uri(page + 1) if (page + 1) * size < len(found) else None,
                "page": page,
                "page_size": size,
                "previous_page_uri": page_uri(page - 1) if page > 0 else None,
                "start": page * size,
                "uri": page_uri(page),
            }
        )

    @router.post(API + "/Messages.json")
    async def create_message(AccountSid: str, request: Request) -> Response:
        if not _authorized(state, request, AccountSid):
            return _error(401, "Authenticate")
        form = await request.form()
        params = {k: str(v) for k, v in form.items()}
        to = params.get("To", "")
        if not _E164.match(to):
            return _error(400, f"The 'To' number {to} is not a valid phone number.", 21211)
        if not params.get("From") and not params.get("MessagingServiceSid"):
            return _error(400, "A 'From' phone number is required.", 21603)
        if not (params.get("Body") or params.get("MediaUrl") or params.get("ContentSid")):
            return _error(400, "A text message body or media urls must be specified.", 21602)
        if len(params.get("Body", "")) > MAX_BODY_CHARS:
            return _error(400, "The concatenated message body exceeds the 1600 character limit.", 21617)
        if to.split(":")[-1] in state.twilio.opted_out:
            return _error(400, "Attempt to send to unsubscribed recipient", 21610)
        message = _message_json(AccountSid, params)
        encoding, _ = sms_segments(message["body"])
        state.twilio.messages.append(
            {
                **message,
                "status_callback": params.get("StatusCallback"),
                "encoding": encoding,
                "accepted_at": time.time(),  # when it was accepted, for the benchmark's timings
            }
        )
        if params.get("StatusCallback"):
            task = asyncio.create_task(_report_delivery(state, message, params["StatusCallback"]))
            callbacks.add(task)
            task.add_done_callback(callbacks.discard)
        return JSONResponse(message, status_code=201)

    return router


_NOT_IN_THE_RESOURCE = ("status_callback", "status_callback_results", "encoding", "accepted_at")


def _account_json(sid: str, auth_token: str) -> dict[str, Any]:
    created = rfc2822(time.time() - 86400 * 30)
    return {
        "sid": sid,
        "owner_account_sid": sid,
        "friendly_name": "Sandbox account",
        "status": "active",
        "type": "Full",
        "auth_token": auth_token,
        "date_created": created,
        "date_updated": created,
        "uri": f"/2010-04-01/Accounts/{sid}.json",
        "subresource_uris": {"messages": f"/2010-04-01/Accounts/{sid}/Messages.json"},
    }


def _listed(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k not in _NOT_IN_THE_RESOURCE}


def _message_json(account_sid: str, params: dict[str, str]) -> dict[str, Any]:
    sid = "SM" + secrets.token_hex(16)
    now = rfc2822()
    body = params.get("Body", "")
    return {
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": params.get("From"),
        "messaging_service_sid": params.get("MessagingServiceSid"),
        "num_media": "0",
        "num_segments": str(sms_segments(body)[1]),
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "queued" if params.get("From") else "accepted",
        "subresource_uris": {"media": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media.json"},
        "to": params["To"],
        "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
    }


async def _report_delivery(state: SandboxState, message: dict[str, Any], url: str) -> None:
    """Post ``sent`` then ``delivered`` to the StatusCallback, signed like Twilio; note each outcome."""
    stored = next(m for m in state.twilio.messages if m["sid"] == message["sid"])
    stored["status_callback_results"] = results = []
    token = state.twilio.accounts.get(message["account_sid"], "")
    outcome = state.twilio.delivery
    # A client per message (its connections belong to this loop), but never a new TLS context:
    # building one loads the CA bundle, ~20 ms of CPU, which made every SMS cost the harness more
    # than the product.
    async with httpx.AsyncClient(timeout=10, verify=_tls_context()) as client:
        for status in outcome.statuses:
            params = {
                "MessageSid": message["sid"],
                "SmsSid": message["sid"],
                "AccountSid": message["account_sid"],
                "From": message["from"] or "",
                "To": message["to"],
                "MessageStatus": status,
                "SmsStatus": status,
                "ApiVersion": "2010-04-01",
            }
            if message["messaging_service_sid"]:
                params["MessagingServiceSid"] = message["messaging_service_sid"]
            if outcome.error_code is not None and status in ("failed", "undelivered"):
                params["ErrorCode"] = str(outcome.error_code)
            try:
                response = await send_webhook(client, token, url, params)
                results.append({"status": status, "http_status": response.status_code})
            except httpx.HTTPError as exc:
                results.append({"status": status, "error": repr(exc)})
            stored["status"] = status


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every StatusCallback client of the process (httpx's default one)."""
    return httpx.create_ssl_context()


def _recording_json(stored: StoredRecording, base_url: str) -> dict[str, Any]:
    account, sid = stored.account_sid, stored.recording_sid
    uri = f"/2010-04-01/Accounts/{account}/Recordings/{sid}.json"
    created = rfc2822(stored.created)
    return {
        "account_sid": account,
        "api_version": "2010-04-01",
        "call_sid": stored.call_sid,
        "conference_sid": None,
        "date_created": created,
        "date_updated": created,
        "start_time": created,
        "duration": str(stored.duration),
        "sid": sid,
        "price": None,
        "price_unit": "USD",
        "status": "completed",
        "channels": 1,
        "source": "RecordVerb",
        "error_code": None,
        "uri": uri,
        "encryption_details": None,
        "subresource_uris": {
            "add_on_results": f"/2010-04-01/Accounts/{account}/Recordings/{sid}/AddOnResults.json",
            "transcriptions": f"/2010-04-01/Accounts/{account}/Recordings/{sid}/Transcriptions.json",
        },
        "media_url": f"{base_url}/2010-04-01/Accounts/{account}/Recordings/{sid}",
    }


class _CutResponse(Response):
    """Declares the whole recording's length, sends part of it, then drops the connection."""

    def __init__(self, part: bytes, declared: int, media_type: str) -> None:
        super().__init__(part, media_type=media_type)
        self.headers["content-length"] = str(declared)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": True})
        # Returning before the body is complete makes the server close the connection.


_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_ESCAPED = frozenset("\f^{}\\[~]|€")


def sms_segments(body: str) -> tuple[str, int]:
    """(encoding, segments) of a Body as carriers split it (3GPP TS 23.038 / 23.040)."""
    if all(ch in _GSM7 or ch in _GSM7_ESCAPED for ch in body):
        encoding, sizes, single, multi = "GSM-7", [1 + (ch in _GSM7_ESCAPED) for ch in body], 160, 153
    else:
        units = [len(ch.encode("utf-16-le")) // 2 for ch in body]
        encoding, sizes, single, multi = "UCS-2", units, 70, 67
    if sum(sizes) <= single:
        return encoding, 1
    segments, room = 1, multi
    for size in sizes:  # an escape pair or a surrogate pair never straddles two segments
        if size > room:
            segments, room = segments + 1, multi
        room -= size
    return encoding, segments
