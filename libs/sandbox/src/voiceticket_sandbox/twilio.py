"""Twilio stand-in: recording media and metadata downloads, and sending SMS (Messages.json).

Recording media is served as stored: the sandbox does not transcode, so ``.wav`` and ``.mp3`` return
the same bytes with the content type they were registered with. Unlike Twilio's default (public media
URLs), media always needs HTTP basic auth here, as with "Enforce HTTP Auth on Media URLs".
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import math
import re
import secrets
import time
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from voiceticket_sandbox.contracts import TWILIO
from voiceticket_sandbox.control import control_router
from voiceticket_sandbox.recorder import SandboxMiddleware
from voiceticket_sandbox.state import SandboxState, StoredRecording
from voiceticket_sandbox.twilio_webhooks import rfc2822, send_webhook

API = "/2010-04-01/Accounts/{AccountSid}"
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

    return router


def _authorized(state: SandboxState, request: Request, account_sid: str) -> bool:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, token = base64.b64decode(credentials).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    expected = state.twilio.accounts.get(user)
    return user == account_sid and expected is not None and secrets.compare_digest(expected, token)


def _twilio_api(state: SandboxState) -> APIRouter:
    router = APIRouter()
    callbacks: set[asyncio.Task[None]] = set()

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
        return Response(stored.audio, media_type=stored.content_type)

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
        if to.split(":")[-1] in state.twilio.opted_out:
            return _error(400, "Attempt to send to unsubscribed recipient", 21610)
        message = _message_json(AccountSid, params)
        state.twilio.messages.append({**message, "status_callback": params.get("StatusCallback")})
        if params.get("StatusCallback"):
            task = asyncio.create_task(_report_delivery(state, message, params["StatusCallback"]))
            callbacks.add(task)
            task.add_done_callback(callbacks.discard)
        return JSONResponse(message, status_code=201)

    return router


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
        "num_segments": str(1 if len(body) <= 160 else math.ceil(len(body) / 153)),
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
    async with httpx.AsyncClient(timeout=10) as client:
        for status in ("sent", "delivered"):
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
            try:
                response = await send_webhook(client, token, url, params)
                results.append({"status": status, "http_status": response.status_code})
            except httpx.HTTPError as exc:
                results.append({"status": status, "error": repr(exc)})
            stored["status"] = status


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
