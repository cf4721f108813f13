"""The Twilio stand-in over real HTTP: SMS, recording downloads, recording of requests, faults."""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from voiceticket_sandbox import make_tone_wav
from voiceticket_sandbox.server import serve_app
from voiceticket_sandbox.twilio_webhooks import twilio_signature

if TYPE_CHECKING:
    from conftest import Sandbox

SMS = {"To": "+15551234567", "From": "+15557654321", "Body": "Your request is HELP-1."}


def messages_url(sb: Sandbox) -> str:
    return f"{sb.urls.twilio}/2010-04-01/Accounts/{sb.account_sid}/Messages.json"


async def test_valid_message_is_created_and_recorded_valid(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
    response = await http.post(messages_url(sandbox), data=SMS, auth=sandbox.twilio_auth)

    assert response.status_code == 201
    message = response.json()
    assert re.fullmatch(r"SM[0-9a-f]{32}", message["sid"])
    assert (message["status"], message["to"], message["from"]) == ("queued", SMS["To"], SMS["From"])
    assert message["uri"].endswith(f"/Messages/{message['sid']}.json")
    records = (await http.get(f"{sandbox.urls.twilio}/_sandbox/requests")).json()
    assert [(r["valid"], r["status"], r["body"]) for r in records] == [(True, 201, SMS)]
    assert records[0]["auth"] == {"scheme": "basic", "username": sandbox.account_sid}
    assert "authorization" not in records[0]["headers"]


async def test_message_without_to_or_with_unknown_parameter_is_400_and_recorded_invalid(
    sandbox: Sandbox, http: httpx.AsyncClient
) -> None:
    no_to = {k: v for k, v in SMS.items() if k != "To"}
    first = await http.post(messages_url(sandbox), data=no_to, auth=sandbox.twilio_auth)
    second = await http.post(
        messages_url(sandbox), data={**SMS, "Priority": "high"}, auth=sandbox.twilio_auth
    )

    assert (first.status_code, second.status_code) == (400, 400)
    assert set(first.json()) == {"code", "message", "more_info", "status"}
    assert "'To' is a required property" in first.json()["message"]
    records = (await http.get(f"{sandbox.urls.twilio}/_sandbox/requests")).json()
    assert [r["valid"] for r in records] == [False, False]
    assert records[1]["errors"] == ["body: unknown form field 'Priority'"]
    assert sandbox.state.twilio.messages == []


async def test_opted_out_recipient_gets_21610(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
    await http.post(f"{sandbox.urls.twilio}/_sandbox/opted-out", json={"number": SMS["To"]})

    response = await http.post(messages_url(sandbox), data=SMS, auth=sandbox.twilio_auth)

    assert response.status_code == 400
    assert response.json()["code"] == 21610
    assert response.json()["status"] == 400


async def test_wrong_credentials_get_401(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
    response = await http.post(messages_url(sandbox), data=SMS, auth=(sandbox.account_sid, "wrong"))
    missing = await http.post(messages_url(sandbox), data=SMS)

    assert (response.status_code, response.json()["code"]) == (401, 20003)
    assert missing.status_code == 401


async def test_recording_media_and_metadata_need_basic_auth(
    sandbox: Sandbox, http: httpx.AsyncClient
) -> None:
    audio = make_tone_wav(seconds=0.5)
    sid = "RE" + "c" * 32
    registered = await sandbox.register_recording(
        sid, audio, content_type="audio/x-wav", transcript="Hello there.", duration=3
    )
    base = sandbox.recording_url(sid)

    wav = await http.get(base + ".wav", auth=sandbox.twilio_auth)
    bare = await http.get(base, auth=sandbox.twilio_auth)
    meta = await http.get(base + ".json", auth=sandbox.twilio_auth)
    anonymous = await http.get(base + ".wav")
    unknown = await http.get(base.replace("c" * 32, "d" * 32) + ".wav", auth=sandbox.twilio_auth)

    assert registered["sha256"] == hashlib.sha256(audio).hexdigest()
    assert sandbox.state.openai.transcripts[hashlib.sha256(audio).hexdigest()] == "Hello there."
    assert (wav.status_code, wav.content, wav.headers["content-type"]) == (200, audio, "audio/x-wav")
    assert bare.content == audio
    assert meta.json()["sid"] == sid and meta.json()["duration"] == "3"
    assert meta.json()["media_url"] == base
    assert (anonymous.status_code, unknown.status_code) == (401, 404)


async def test_fault_with_retry_after_is_served_then_normal_handling_resumes(
    sandbox: Sandbox, http: httpx.AsyncClient
) -> None:
    fault = {"method": "POST", "path_regex": r"/Messages\.json$", "status": 429, "retry_after": 2, "times": 1}
    assert (await http.post(f"{sandbox.urls.twilio}/_sandbox/faults", json=fault)).status_code == 201

    limited = await http.post(messages_url(sandbox), data=SMS, auth=sandbox.twilio_auth)
    after = await http.post(messages_url(sandbox), data=SMS, auth=sandbox.twilio_auth)

    assert (limited.status_code, limited.headers["retry-after"]) == (429, "2")
    assert limited.json()["code"] == 20429
    assert after.status_code == 201
    records = (await http.get(f"{sandbox.urls.twilio}/_sandbox/requests")).json()
    assert [r["status"] for r in records] == [429, 201]
    assert records[0]["fault"]["status"] == 429


async def test_reset_clears_records_but_keeps_accounts(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
    await http.post(messages_url(sandbox), data=SMS, auth=sandbox.twilio_auth)
    await http.post(f"{sandbox.urls.twilio}/_sandbox/reset")

    assert (await http.get(f"{sandbox.urls.twilio}/_sandbox/requests")).json() == []
    assert (await http.post(messages_url(sandbox), data=SMS, auth=sandbox.twilio_auth)).status_code == 201


async def test_status_callback_is_signed_like_twilio(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
    received: list[tuple[str, dict[str, str], str]] = []
    receiver = FastAPI()

    @receiver.post("/twilio/message-status")
    async def status(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        received.append((str(request.url), form, request.headers["x-twilio-signature"]))
        return Response(status_code=204)

    async with serve_app(receiver) as origin:
        callback = f"{origin}/twilio/message-status?tenant=acme"
        response = await http.post(
            messages_url(sandbox), data={**SMS, "StatusCallback": callback}, auth=sandbox.twilio_auth
        )
        for _ in range(100):
            if len(received) == 2:
                break
            await asyncio.sleep(0.02)

    assert [form["MessageStatus"] for _, form, _ in received] == ["sent", "delivered"]
    for url, form, signature in received:
        assert url == callback
        assert form["MessageSid"] == response.json()["sid"]
        assert signature == twilio_signature(sandbox.auth_token, url, form)


async def register_recording(sb: Sandbox, audio: bytes) -> str:
    sid = "RE" + "f" * 32
    await sb.register_recording(sid, audio)
    return sb.recording_url(sid) + ".wav"


async def test_media_faults_make_young_media_404_then_serve_it(
    sandbox: Sandbox, http: httpx.AsyncClient
) -> None:
    audio = make_tone_wav(seconds=0.3)
    set_faults = await http.post(
        f"{sandbox.urls.twilio}/_sandbox/media-faults",
        json={"unavailable_requests": 2, "unavailable_seconds": 0.4},
    )
    url = await register_recording(sandbox, audio)

    statuses = [(await http.get(url, auth=sandbox.twilio_auth)).status_code for _ in range(3)]
    await asyncio.sleep(0.45)
    after = await http.get(url, auth=sandbox.twilio_auth)
    shown = (await http.get(f"{sandbox.urls.twilio}/_sandbox/media-faults")).json()
    await http.delete(f"{sandbox.urls.twilio}/_sandbox/media-faults")

    assert set_faults.status_code == 201
    assert statuses == [404, 404, 404]  # two by count, the third because the recording is still young
    assert (after.status_code, after.content) == (200, audio)
    assert shown["unavailable_requests"] == 2 and shown["requests"] == {"RE" + "f" * 32: 4}
    assert (await http.get(f"{sandbox.urls.twilio}/_sandbox/media-faults")).json()[
        "unavailable_requests"
    ] == 0


async def test_partial_media_is_cut_or_short_then_whole(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
    audio = make_tone_wav(seconds=0.5)
    url = await register_recording(sandbox, audio)
    await http.post(
        f"{sandbox.urls.twilio}/_sandbox/media-faults", json={"partial": "short", "partial_times": 1}
    )
    short = await http.get(url, auth=sandbox.twilio_auth)
    await http.post(
        f"{sandbox.urls.twilio}/_sandbox/media-faults", json={"partial": "cut", "partial_times": 1}
    )
    with pytest.raises(httpx.RemoteProtocolError):
        await http.get(url, auth=sandbox.twilio_auth)
    whole = await http.get(url, auth=sandbox.twilio_auth)

    assert short.status_code == 200 and short.content == audio[: len(audio) // 2]
    assert short.headers["content-length"] == str(len(audio) // 2)
    assert whole.content == audio


async def test_messages_report_gsm7_or_ucs2_segments(sandbox: Sandbox, http: httpx.AsyncClient) -> None:
    bodies = {
        "gsm": "Grüße, Ihre Anfrage HELP-1 ist angelegt. " * 4,
        "ucs2": "Zgłoszenie HELP-1 utworzone 🙂 " * 3,
    }
    segments = {}
    for name, body in bodies.items():
        response = await http.post(
            messages_url(sandbox), data={**SMS, "Body": body}, auth=sandbox.twilio_auth
        )
        segments[name] = response.json()["num_segments"]
    too_long = await http.post(
        messages_url(sandbox), data={**SMS, "Body": "x" * 1601}, auth=sandbox.twilio_auth
    )

    assert len(bodies["gsm"]) == 164 and segments["gsm"] == "2"  # umlauts are GSM-7: 164 > 160
    assert len(bodies["ucs2"]) == 90 and segments["ucs2"] == "2"  # 93 UTF-16 units > 70
    assert [m["encoding"] for m in sandbox.state.twilio.messages] == ["GSM-7", "UCS-2"]
    assert (too_long.status_code, too_long.json()["code"]) == (400, 21617)


async def test_delivery_outcome_sets_what_status_callbacks_report(
    sandbox: Sandbox, http: httpx.AsyncClient
) -> None:
    received: list[dict[str, str]] = []
    receiver = FastAPI()

    @receiver.post("/twilio/message-status")
    async def status(request: Request) -> Response:
        received.append({k: str(v) for k, v in (await request.form()).items()})
        return Response(status_code=204)

    outcome = {"statuses": ["sent", "undelivered"], "error_code": 30003}
    assert (
        await http.post(f"{sandbox.urls.twilio}/_sandbox/delivery-outcome", json=outcome)
    ).status_code == 201
    async with serve_app(receiver) as origin:
        callback = f"{origin}/twilio/message-status"
        await http.post(
            messages_url(sandbox), data={**SMS, "StatusCallback": callback}, auth=sandbox.twilio_auth
        )
        for _ in range(100):
            if len(received) == 2:
                break
            await asyncio.sleep(0.02)

    assert [(r["MessageStatus"], r.get("ErrorCode")) for r in received] == [
        ("sent", None),
        ("undelivered", "30003"),
    ]
    assert sandbox.state.twilio.messages[0]["status"] == "undelivered"


async def test_delete_recording_is_valid_removes_it_and_a_second_delete_is_404(
    sandbox: Sandbox, http: httpx.AsyncClient
) -> None:
    import base64

    sid = "RE" + "d" * 32
    await http.post(
        f"{sandbox.urls.twilio}/_sandbox/recordings",
        json={
            "account_sid": sandbox.account_sid,
            "recording_sid": sid,
            "audio_base64": base64.b64encode(make_tone_wav(0.1)).decode(),
        },
    )
    url = f"{sandbox.urls.twilio}/2010-04-01/Accounts/{sandbox.account_sid}/Recordings/{sid}.json"
    first = await http.delete(url, auth=sandbox.twilio_auth)
    second = await http.delete(url, auth=sandbox.twilio_auth)
    media = await http.get(url.removesuffix(".json") + ".wav", auth=sandbox.twilio_auth)

    assert (first.status_code, second.status_code, media.status_code) == (204, 404, 404)
    records = (await http.get(f"{sandbox.urls.twilio}/_sandbox/requests")).json()
    deletes = [r for r in records if r["method"] == "DELETE"]
    assert [(r["valid"], r["status"]) for r in deletes] == [(True, 204), (True, 404)]
