"""Caller simulator: plays Twilio's side of an inbound call against the ingress service.

For each call it registers the recording (and its reference transcript) with the Twilio stand-in,
then sends the webhooks Twilio would send, signed with ``X-Twilio-Signature`` exactly as Twilio
signs them: the incoming-call webhook, for a line that asks for consent by key the ``<Gather>``
action for each key the caller presses (or the ``<Redirect>`` after it when they press none), the
recording status callback(s) the returned ``<Record>`` subscribes to, the ``<Record action>``
request and, if configured, the call status callback.
"""

from __future__ import annotations

import base64
import secrets
import time
import xml.etree.ElementTree as ET  # noqa: S405 - parses TwiML from our own service under test
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urljoin

import httpx

from voiceticket_sandbox.audio import make_tone_wav
from voiceticket_sandbox.twilio_webhooks import rfc2822, send_webhook, twilio_signature

__all__ = ["AnsweredCall", "CallerSimulator", "InvalidTwiml", "PlayedCall", "Said", "make_tone_wav"]

WEBHOOK_TIMEOUT = 15.0  # Twilio gives a webhook at most 15 s in total
_COUNTRIES = {
    "+1": "US", "+44": "GB", "+49": "DE", "+33": "FR", "+34": "ES", "+41": "CH", "+43": "AT",
    "+31": "NL", "+39": "IT", "+61": "AU", "+353": "IE", "+45": "DK", "+46": "SE", "+47": "NO",
}  # fmt: skip


SUPPORT_MESSAGES = (
    "Hello, my printer on the third floor is jammed again and the display shows error E42.",
    "Hi, I cannot log in to the VPN since this morning, my account number is 55123.",
    "Good morning, I was charged twice on my last invoice, please call me back.",
    "Our shared drive is very slow for the whole accounting team since yesterday.",
    "Please reset my password for the billing portal, I am locked out.",
    "The conference room screen in building B does not turn on.",
    "I would like to upgrade our plan to the enterprise tier.",
    "My laptop battery swells and the trackpad no longer clicks.",
)
"""What the load generators' callers say: support matters of every kind (benchmarks, chaos suite)."""


@dataclass(frozen=True)
class Said:
    """A spoken answer to a ``<Gather>`` that listens for speech: Twilio sends it as ``SpeechResult``
    with its ``Confidence`` (to a ``<Gather>`` without ``speech`` in ``input`` it is no input)."""

    text: str
    confidence: float = 0.92


Answer = str | Said | None
"""What the caller does at a ``<Gather>``: presses keys (str), speaks (:class:`Said`) or nothing."""

# <Gather>'s attributes and their values as Twilio documents them
# (https://www.twilio.com/docs/voice/twiml/gather); the simulator refuses anything else.
_GATHER_ATTRIBUTES = {
    "action", "actionOnEmptyResult", "enhanced", "finishOnKey", "hints", "input", "language",
    "method", "numDigits", "partialResultCallback", "partialResultCallbackMethod",
    "profanityFilter", "speechModel", "speechTimeout", "timeout",
}  # fmt: skip
_GATHER_INPUTS = {"dtmf", "speech", "dtmf speech", "speech dtmf"}


class InvalidTwiml(ValueError):
    """TwiML Twilio would not accept (the call would fail with an application error)."""


def check_gather(gather: ET.Element) -> None:
    """Refuse a ``<Gather>`` Twilio would refuse: unknown attributes or values out of their range."""
    unknown = set(gather.attrib) - _GATHER_ATTRIBUTES
    if unknown:
        raise InvalidTwiml(f"<Gather> has unknown attributes {sorted(unknown)}")
    if gather.get("input", "dtmf") not in _GATHER_INPUTS:
        raise InvalidTwiml("<Gather input> must be dtmf, speech or dtmf speech")
    for name in ("numDigits", "timeout"):
        value = gather.get(name)
        if value is not None and not (value.isdigit() and int(value) >= 1):
            raise InvalidTwiml(f"<Gather {name}> must be a positive integer")
    speech_timeout = gather.get("speechTimeout")
    if speech_timeout is not None and speech_timeout != "auto" and not speech_timeout.isdigit():
        raise InvalidTwiml("<Gather speechTimeout> must be a number of seconds or auto")
    if not all(c in "0123456789*#" for c in gather.get("finishOnKey", "#")):
        raise InvalidTwiml("<Gather finishOnKey> must be keys 0-9, * or # (or empty)")
    if gather.get("method", "POST") not in ("GET", "POST"):
        raise InvalidTwiml("<Gather method> must be GET or POST")
    hints = gather.get("hints")
    if hints is not None and any(len(h.strip()) > 100 for h in hints.split(",")):
        raise InvalidTwiml("<Gather hints> are phrases of at most 100 characters each")
    for child in gather:
        if child.tag not in ("Say", "Play", "Pause"):
            raise InvalidTwiml(f"<Gather> may nest Say, Play and Pause, not <{child.tag}>")


@dataclass
class PlayedCall:
    """What happened during one simulated call. Status fields are HTTP status codes of the
    webhooks; ``None`` means that webhook was not sent (no ``<Record>``, not subscribed, no URL)."""

    call_sid: str
    recording_sid: str
    twiml: str
    voice_status: int
    recording_callback_url: str | None = None
    recording_status: int | None = None
    action_url: str | None = None
    action_status: int | None = None
    call_status_status: int | None = None
    extra_statuses: dict[str, int] = field(default_factory=dict)
    gathers: list[tuple[Answer, int, str]] = field(default_factory=list)
    """Each ``<Gather>`` answered: (the keys pressed, the words said or None for nothing, HTTP
    status, TwiML returned)."""
    recording_sent_at: float | None = None
    """``time.time()`` when the final recording status callback was sent: the caller hung up."""


@dataclass
class AnsweredCall:
    """A call ingress has answered, the caller still speaking: :meth:`CallerSimulator.hang_up`
    sends what Twilio sends when they stop (a benchmark answers many, then hangs them up on a
    schedule)."""

    played: PlayedCall
    params: dict[str, str]
    voice_url: str
    twiml: str
    duration: int
    error_code: str | None = None


class CallerSimulator:
    """Plays calls into ``ingress_url`` as Twilio account ``account_sid`` would.

    ``twilio_sandbox_url`` is the Twilio stand-in's origin; recording URLs point there. Pass
    ``call_status_url`` to also send the call status callback, and ``http_client`` to reuse a client.
    ``connect`` maps public origins to where they are served here: with ``ingress_url`` set to the
    public URL (``https://voice.example.com``) and that origin mapped to a proxy in front of ingress,
    every webhook is signed for the public URL and sent through the proxy, as Twilio's would be.
    """

    def __init__(
        self,
        ingress_url: str,
        account_sid: str,
        auth_token: str,
        twilio_sandbox_url: str,
        *,
        call_status_url: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        connect: Mapping[str, str] | None = None,
    ) -> None:
        self.ingress_url = ingress_url.rstrip("/")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.twilio_sandbox_url = twilio_sandbox_url.rstrip("/")
        self.call_status_url = call_status_url
        self._client = http_client
        self.connect = dict(connect or {})

    def sign(self, url: str, params: Mapping[str, str]) -> str:
        """``X-Twilio-Signature`` for a POST of ``params`` to ``url``."""
        return twilio_signature(self.auth_token, url, params)

    async def post_signed(self, url: str, params: Mapping[str, str]) -> httpx.Response:
        """Send one signed webhook (e.g. to replay a callback as Twilio's retries do)."""
        async with self._http() as client:
            return await send_webhook(client, self.auth_token, url, params, connect=self.connect)

    async def play_call(
        self,
        from_number: str,
        to_number: str,
        audio: bytes,
        transcript: str,
        recording_duration: int = 12,
        content_type: str = "audio/x-wav",
        keys: Sequence[Answer] = (),
    ) -> PlayedCall:
        """A caller who leaves a message. The OpenAI stand-in will transcribe ``audio`` as
        ``transcript`` (keyed by the audio's sha256, so use distinct audio per transcript).

        ``keys``: what the caller does at each ``<Gather>`` (a consent prompt, an IVR menu), in
        order: keys to press, a :class:`Said` to speak, or None (or running out of answers) for
        nothing, so Twilio follows the ``<Redirect>`` after it."""
        answered = await self.answer_call(
            from_number, to_number, audio, transcript, recording_duration, content_type, keys
        )
        return await self.hang_up(answered)

    async def answer_call(
        self,
        from_number: str,
        to_number: str,
        audio: bytes,
        transcript: str,
        recording_duration: int = 12,
        content_type: str = "audio/x-wav",
        keys: Sequence[Answer] = (),
    ) -> AnsweredCall:
        """The first half of :meth:`play_call`: register the recording, send the incoming-call
        webhook and answer any ``<Gather>``; the caller is now leaving their message."""
        call_sid, recording_sid = "CA" + secrets.token_hex(16), "RE" + secrets.token_hex(16)
        async with self._http() as client:
            await self._register(
                client, recording_sid, call_sid, audio, content_type, transcript, recording_duration
            )
            return await self._answer(
                client, call_sid, recording_sid, from_number, to_number, recording_duration, None, keys
            )

    async def hang_up(self, answered: AnsweredCall) -> PlayedCall:
        """The second half: the recording status callback(s), the ``<Record action>`` request and,
        if configured, the call status callback."""
        async with self._http() as client:
            return await self._hang_up(client, answered)

    async def play_absent_call(
        self, from_number: str, to_number: str, keys: Sequence[Answer] = ()
    ) -> PlayedCall:
        """A caller who hangs up before saying anything: the recording is ``absent`` (error 16101).
        ``keys`` as for :meth:`play_call`."""
        call_sid, recording_sid = "CA" + secrets.token_hex(16), "RE" + secrets.token_hex(16)
        async with self._http() as client:
            await self._ensure_account(client)
            answered = await self._answer(
                client, call_sid, recording_sid, from_number, to_number, 0, "16101", keys
            )
            return await self._hang_up(client, answered)

    @asynccontextmanager
    async def _http(self) -> AsyncIterator[httpx.AsyncClient]:
        if self._client is not None:
            yield self._client
            return
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT) as client:
            yield client

    async def _ensure_account(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            f"{self.twilio_sandbox_url}/_sandbox/accounts",
            json={"account_sid": self.account_sid, "auth_token": self.auth_token},
        )
        response.raise_for_status()

    async def _register(
        self,
        client: httpx.AsyncClient,
        recording_sid: str,
        call_sid: str,
        audio: bytes,
        content_type: str,
        transcript: str,
        duration: int,
    ) -> None:
        await self._ensure_account(client)
        response = await client.post(
            f"{self.twilio_sandbox_url}/_sandbox/recordings",
            json={
                "account_sid": self.account_sid,
                "recording_sid": recording_sid,
                "audio_base64": base64.b64encode(audio).decode(),
                "content_type": content_type,
                "transcript": transcript,
                "call_sid": call_sid,
                "duration": duration,
            },
        )
        response.raise_for_status()

    async def _answer(
        self,
        client: httpx.AsyncClient,
        call_sid: str,
        recording_sid: str,
        from_number: str,
        to_number: str,
        duration: int,
        error_code: str | None,
        keys: Sequence[Answer] = (),
    ) -> AnsweredCall:
        voice_url = f"{self.ingress_url}/twilio/voice"
        base = self.call_params(call_sid, from_number, to_number)
        voice = await send_webhook(
            client, self.auth_token, voice_url, {**base, "CallStatus": "ringing"}, connect=self.connect
        )
        played = PlayedCall(call_sid, recording_sid, voice.text, voice.status_code)
        twiml = await self._gathers(client, played, base, voice_url, voice.text, list(keys))
        return AnsweredCall(played, base, voice_url, twiml, duration, error_code)

    async def _hang_up(self, client: httpx.AsyncClient, answered: AnsweredCall) -> PlayedCall:
        played, base, voice_url = answered.played, answered.params, answered.voice_url
        call_sid, recording_sid = played.call_sid, played.recording_sid
        duration, error_code = answered.duration, answered.error_code
        record = _find_record(answered.twiml)
        if record is None:
            return played
        recording_url = (
            f"{self.twilio_sandbox_url}/2010-04-01/Accounts/{self.account_sid}/Recordings/{recording_sid}"
        )
        started = rfc2822()
        callback = record.get("recordingStatusCallback")
        if callback:
            played.recording_callback_url = urljoin(voice_url, callback)
            method = record.get("recordingStatusCallbackMethod", "POST")
            events = (record.get("recordingStatusCallbackEvent") or "completed").replace(",", " ").split()
            final = "absent" if error_code else "completed"
            for event in ("in-progress", final):
                if event not in events:
                    continue
                params = {
                    "AccountSid": self.account_sid,
                    "CallSid": call_sid,
                    "RecordingSid": recording_sid,
                    "RecordingUrl": recording_url,
                    "RecordingStatus": event,
                    "RecordingChannels": "1",
                    "RecordingSource": "RecordVerb",
                    "RecordingStartTime": started,
                }
                if event == final:
                    params["RecordingDuration"] = str(duration)
                    if error_code:
                        params["ErrorCode"] = error_code
                    played.recording_sent_at = time.time()
                response = await send_webhook(
                    client, self.auth_token, played.recording_callback_url, params, method, self.connect
                )
                if event == final:
                    played.recording_status = response.status_code
                else:
                    played.extra_statuses["recording_in_progress"] = response.status_code
        action = record.get("action")
        if action:
            played.action_url = urljoin(voice_url, action)
            params = {
                **base,
                "CallStatus": "completed",
                "RecordingUrl": recording_url,
                "RecordingSid": recording_sid,
                "RecordingDuration": str(duration),
                "Digits": "hangup",
            }
            response = await send_webhook(
                client, self.auth_token, played.action_url, params, record.get("method", "POST"), self.connect
            )
            played.action_status = response.status_code
        if self.call_status_url:
            params = {
                **base,
                "CallStatus": "completed",
                "CallDuration": str(duration + 8),
                "Duration": str(max(1, (duration + 8 + 59) // 60)),
                "Timestamp": rfc2822(),
                "CallbackSource": "call-progress-events",
                "SequenceNumber": "0",
            }
            response = await send_webhook(
                client, self.auth_token, self.call_status_url, params, connect=self.connect
            )
            played.call_status_status = response.status_code
        return played

    async def _gathers(
        self,
        client: httpx.AsyncClient,
        played: PlayedCall,
        base: Mapping[str, str],
        url: str,
        twiml: str,
        keys: list[Answer],
    ) -> str:
        """Answer each ``<Gather>`` as Twilio would: its action with ``Digits`` for a key or
        ``SpeechResult`` and ``Confidence`` for words (where it listens for speech), or the
        ``<Redirect>`` after it for none; the TwiML that has no ``<Gather>`` left."""
        for _ in range(8):  # a bound, so a service that keeps asking cannot loop the simulator
            root = _parse(twiml)
            gather = None if root is None else next(root.iter("Gather"), None)
            if root is None or gather is None or _find_record(twiml) is not None:
                return twiml
            check_gather(gather)
            key = keys.pop(0) if keys else None
            params = {**base, "CallStatus": "in-progress"}
            heard = _heard(gather, key)
            if heard:
                target, method = gather.get("action") or url, gather.get("method", "POST")
                params.update(heard)
            else:
                redirect = next(root.iter("Redirect"), None)
                if redirect is None or not (redirect.text or "").strip():
                    return twiml  # no input and nothing after the gather: the call ends
                target, method = (redirect.text or "").strip(), redirect.get("method", "POST")
            url = urljoin(url, target)
            response = await send_webhook(client, self.auth_token, url, params, method, self.connect)
            played.gathers.append((key, response.status_code, response.text))
            twiml = response.text
        return twiml

    def call_params(self, call_sid: str, from_number: str, to_number: str) -> dict[str, str]:
        """The parameters Twilio sends with every webhook of an inbound call."""
        from_country, to_country = _country(from_number), _country(to_number)
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call_sid,
            "Direction": "inbound",
            "From": from_number,
            "To": to_number,
            "Caller": from_number,
            "Called": to_number,
            "FromCountry": from_country,
            "ToCountry": to_country,
            "CallerCountry": from_country,
            "CalledCountry": to_country,
            "FromCity": "", "FromState": "", "FromZip": "",
            "ToCity": "", "ToState": "", "ToZip": "",
            "CallerCity": "", "CallerState": "", "CallerZip": "",
            "CalledCity": "", "CalledState": "", "CalledZip": "",
        }  # fmt: skip


def _heard(gather: ET.Element, answer: Answer) -> dict[str, str]:
    """The parameters Twilio adds to the ``<Gather>`` action for ``answer``; empty: no input."""
    if isinstance(answer, Said):
        if "speech" not in gather.get("input", "dtmf").split():
            return {}  # a <Gather> that only listens for keys hears no words
        return {"SpeechResult": answer.text, "Confidence": f"{answer.confidence:.8f}"}
    if answer is None:
        return {}
    return {"Digits": answer}


def _parse(twiml: str) -> ET.Element | None:
    try:
        return ET.fromstring(twiml)  # noqa: S314 - TwiML from the service under test
    except ET.ParseError:
        return None


def _find_record(twiml: str) -> ET.Element | None:
    root = _parse(twiml)
    return None if root is None else next(root.iter("Record"), None)


def _country(number: str) -> str:
    for prefix in sorted(_COUNTRIES, key=len, reverse=True):
        if number.startswith(prefix):
            return _COUNTRIES[prefix]
    return ""
