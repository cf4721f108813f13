"""Callers as Twilio plays them during faults: signed webhooks, retried when ingress is down.

Twilio retries a webhook that failed to connect or timed out (and, with the ``#rc``/``rt``
connection overrides a number can carry, one answered 5xx); a call during an ingress restart or
a broker restart would otherwise be lost at the edge, which is not what the suite measures. So
each webhook is sent until a 2xx (or a 4xx, which is final and noted) or its deadline passes.
Duplicates and out-of-order callbacks are sent as the call's plan says.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urljoin

import httpx
from chaos_plan import CallPlan

from voiceticket_sandbox.audio import make_tone_wav
from voiceticket_sandbox.caller import CallerSimulator
from voiceticket_sandbox.demo_tenant import ACCOUNT_SID, AUTH_TOKEN
from voiceticket_sandbox.twilio_webhooks import rfc2822, send_webhook

WEBHOOK_DEADLINE = 180.0
"""How long one webhook is retried: a broker restart, its pause and ingress catching up."""
DURATION = 12


@dataclass
class PlayedCall:
    plan: CallPlan
    call_sid: str
    recording_sid: str
    statuses: dict[str, list[int | str]] = field(default_factory=dict)
    """Per webhook, every answer (status code or the transport error's name), in order."""
    hung_up_at: float | None = None
    """``time.time()`` when ingress accepted the completed recording callback."""
    problems: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        """Ingress took the call: answered the incoming call and accepted its recording."""
        return self.hung_up_at is not None


class ChaosCaller:
    def __init__(self, ingress_url: str, twilio_url: str, client: httpx.AsyncClient) -> None:
        self.ingress_url = ingress_url.rstrip("/")
        self.twilio_url = twilio_url.rstrip("/")
        self.client = client
        self.simulator = CallerSimulator(ingress_url, ACCOUNT_SID, AUTH_TOKEN, twilio_url, http_client=client)

    async def play(self, plan: CallPlan) -> PlayedCall:
        call = PlayedCall(plan, "CA" + secrets.token_hex(16), "RE" + secrets.token_hex(16))
        try:
            await self._play(call)
        except Exception as exc:  # the verdict reports it with the call's SID
            call.problems.append(f"caller crashed: {type(exc).__name__}: {exc}")
        return call

    async def _play(self, call: PlayedCall) -> None:
        plan = call.plan
        audio = make_tone_wav(plan.tone_seconds, frequency=plan.tone_frequency)
        await self._control(
            "/_sandbox/recordings",
            {
                "account_sid": ACCOUNT_SID,
                "recording_sid": call.recording_sid,
                "audio_base64": base64.b64encode(audio).decode(),
                "content_type": "audio/x-wav",
                "transcript": plan.transcript,
                "call_sid": call.call_sid,
                "duration": DURATION,
            },
        )
        if plan.opted_out:
            await self._control("/_sandbox/opted-out", {"number": plan.caller})
        base = self.simulator.call_params(call.call_sid, plan.caller, plan.line)
        voice_url = f"{self.ingress_url}/twilio/voice"
        voice = await self._deliver(call, "voice", voice_url, {**base, "CallStatus": "ringing"})
        if voice is None:
            return
        if plan.duplicate_voice:
            await self._once(call, "voice-duplicate", voice_url, {**base, "CallStatus": "ringing"})
        record = _record(voice.text)
        if record is None or not record.get("recordingStatusCallback"):
            call.problems.append(f"no <Record> with a status callback in the TwiML: {voice.text[:200]}")
            return
        recording_url = f"{self.twilio_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{call.recording_sid}"
        callback = urljoin(voice_url, record.get("recordingStatusCallback", ""))
        events = (record.get("recordingStatusCallbackEvent") or "completed").replace(",", " ").split()
        recording = {
            "AccountSid": ACCOUNT_SID,
            "CallSid": call.call_sid,
            "RecordingSid": call.recording_sid,
            "RecordingUrl": recording_url,
            "RecordingChannels": "1",
            "RecordingSource": "RecordVerb",
            "RecordingStartTime": rfc2822(),
        }
        in_progress = {**recording, "RecordingStatus": "in-progress"}
        completed = {**recording, "RecordingStatus": "completed", "RecordingDuration": str(DURATION)}
        action = record.get("action")
        steps: list[tuple[str, str, dict[str, str]]] = []
        if "in-progress" in events:
            steps.append(("recording-in-progress", callback, in_progress))
        steps.append(("recording-completed", callback, completed))
        if action:
            done = {**base, "CallStatus": "completed", "RecordingUrl": recording_url,
                    "RecordingSid": call.recording_sid, "RecordingDuration": str(DURATION), "Digits": "hangup"}  # fmt: skip
            steps.append(("record-action", urljoin(voice_url, action), done))
        status = {**base, "CallStatus": "completed", "CallDuration": str(DURATION + 8), "Duration": "1",
                  "Timestamp": rfc2822(), "CallbackSource": "call-progress-events", "SequenceNumber": "0"}  # fmt: skip
        steps.append(("call-status", f"{self.ingress_url}/twilio/call-status", status))
        if plan.out_of_order:
            steps.reverse()  # call status, action, completed, then the interim status after it
        for label, url, params in steps:
            answered = await self._deliver(call, label, url, params)
            if label == "recording-completed" and answered is not None:
                call.hung_up_at = time.time()
        if call.hung_up_at is None:
            return
        start = time.monotonic()
        for delay in plan.duplicate_recordings:  # Twilio's retries of a callback it thinks failed
            await asyncio.sleep(max(0.0, start + delay - time.monotonic()))
            await self._once(call, "recording-duplicate", callback, completed)

    async def _control(self, path: str, body: dict[str, object]) -> None:
        response = await self.client.post(f"{self.twilio_url}{path}", json=body)
        response.raise_for_status()

    async def _once(self, call: PlayedCall, label: str, url: str, params: dict[str, str]) -> None:
        try:
            response = await send_webhook(self.client, AUTH_TOKEN, url, params)
            call.statuses.setdefault(label, []).append(response.status_code)
        except httpx.HTTPError as exc:
            call.statuses.setdefault(label, []).append(type(exc).__name__)

    async def _deliver(
        self, call: PlayedCall, label: str, url: str, params: dict[str, str]
    ) -> httpx.Response | None:
        """Send until a 2xx; a 4xx is final (and a problem); None when it never got through."""
        answers = call.statuses.setdefault(label, [])
        deadline = time.monotonic() + WEBHOOK_DEADLINE
        backoff = 1.0
        while True:
            try:
                response = await send_webhook(self.client, AUTH_TOKEN, url, params)
                answers.append(response.status_code)
                if response.is_success:
                    return response
                if response.status_code < 500:
                    call.problems.append(f"{label}: ingress answered {response.status_code}")
                    return None
            except httpx.HTTPError as exc:
                answers.append(type(exc).__name__)
            if time.monotonic() + backoff > deadline:
                call.problems.append(f"{label}: not accepted within {WEBHOOK_DEADLINE:.0f}s: {answers}")
                return None
            await asyncio.sleep(backoff)  # Twilio's retry interval, not a synchronisation
            backoff = min(backoff * 2, 8.0)


def _record(twiml: str) -> ET.Element | None:
    try:
        root = ET.fromstring(twiml)  # noqa: S314 - TwiML from the service under test
    except ET.ParseError:
        return None
    return next(root.iter("Record"), None)
