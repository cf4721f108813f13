"""The TwiML ingress answers with."""

from __future__ import annotations

from typing import Any

from twilio.twiml.voice_response import VoiceResponse


def greeting_and_record(
    line: dict[str, Any],
    record_action_url: str,
    recording_callback_url: str,
    timeout_seconds: int,
    finish_on_key: str,
) -> str:
    """Greeting, recording notice, then `<Record>`; Twilio requests the action when it ends."""

    response = VoiceResponse()
    say = {"voice": line.get("voice") or "alice"}
    if line.get("language"):
        say["language"] = line["language"]
    response.say(line.get("greeting") or "Thank you for calling support.", **say)
    if line.get("recording_notice"):
        response.say(line["recording_notice"], **say)
    response.record(
        action=record_action_url,
        method="POST",
        timeout=timeout_seconds,
        finish_on_key=finish_on_key,
        max_length=int(line.get("max_recording_seconds") or 120),
        play_beep=True,
        trim="trim-silence",
        recording_status_callback=recording_callback_url,
        recording_status_callback_method="POST",
        recording_status_callback_event="completed absent",
    )
    return str(response)


def goodbye(text: str = "Thank you. Your message has been recorded. Goodbye.") -> str:
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return str(response)


def not_in_service() -> str:
    response = VoiceResponse()
    response.say("Sorry, this number is not in service. Goodbye.")
    response.hangup()
    return str(response)


def empty() -> str:
    return str(VoiceResponse())
