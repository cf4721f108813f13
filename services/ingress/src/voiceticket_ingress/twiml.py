"""The TwiML ingress answers with, per line: its language, voice, texts and recording limits."""

from __future__ import annotations

import re

from twilio.twiml.voice_response import VoiceResponse

from voiceticket_common.runtime_views import IngressLine

# <Say language> wants a locale ("de-DE"); lines store ISO 639-1 ("de"). The locale Twilio's
# voices most commonly pair with each language; a Google voice names its own locale.
_LOCALES = {
    "da": "da-DK", "de": "de-DE", "en": "en-US", "es": "es-ES", "fi": "fi-FI", "fr": "fr-FR",
    "it": "it-IT", "ja": "ja-JP", "ko": "ko-KR", "nb": "nb-NO", "nl": "nl-NL", "pl": "pl-PL",
    "pt": "pt-BR", "ru": "ru-RU", "sv": "sv-SE", "tr": "tr-TR", "zh": "zh-CN",
}  # fmt: skip
_GOOGLE_VOICE = re.compile(r"^Google\.([a-z]{2,3}-[A-Z]{2})-")
_GOODBYE = {
    "de": "Vielen Dank. Ihre Nachricht wurde aufgenommen. Auf Wiederhören.",
    "en": "Thank you. Your message has been recorded. Goodbye.",
    "es": "Gracias. Su mensaje ha sido grabado. Adiós.",
    "fr": "Merci. Votre message a été enregistré. Au revoir.",
    "it": "Grazie. Il suo messaggio è stato registrato. Arrivederci.",
    "nl": "Dank u. Uw bericht is opgenomen. Tot ziens.",
}


def say_attributes(line: IngressLine) -> dict[str, str]:
    """``voice`` and ``language`` for every ``<Say>`` of a line.

    Twilio fails a ``<Say>`` whose voice does not speak its language, which would drop the call. So
    the locale follows the voice where the voice fixes it: a Google voice names its locale, and an
    Amazon Polly voice speaks exactly one (Polly.Joanna en-US, Polly.Vicki de-DE), so ``language``
    is left out for it. The basic voices (alice, man, woman) get the line's language as a locale.
    The line's voice must therefore be one that speaks the line's language.
    """
    voice = line.voice
    attributes = {"voice": voice}
    google = _GOOGLE_VOICE.match(voice)
    language = line.language or ""
    if google:
        attributes["language"] = google.group(1)
    elif voice.startswith("Polly."):
        pass
    elif "-" in language:
        attributes["language"] = language
    elif language in _LOCALES:
        attributes["language"] = _LOCALES[language]
    return attributes


def greeting_and_record(line: IngressLine, record_action_url: str, recording_callback_url: str) -> str:
    """Greeting, recording notice, then `<Record>`; Twilio requests the action when it ends.

    Limits come from the line: ``max_recording_seconds`` (maxLength), ``record_timeout_seconds``
    (seconds of silence that end the recording) and ``record_finish_on_key`` (keys that end it).
    """
    response = VoiceResponse()
    say = say_attributes(line)
    response.say(line.greeting, **say)
    if line.recording_notice:
        response.say(line.recording_notice, **say)
    response.record(
        action=record_action_url,
        method="POST",
        timeout=line.record_timeout_seconds,
        finish_on_key=line.record_finish_on_key,
        max_length=line.max_recording_seconds,
        play_beep=True,
        trim="trim-silence",
        recording_status_callback=recording_callback_url,
        recording_status_callback_method="POST",
        recording_status_callback_event="completed absent",
    )
    return str(response)


def goodbye(line: IngressLine) -> str:
    """The `<Record action>` answer: thank the caller in the line's language, then hang up."""
    response = VoiceResponse()
    language = (line.language or "en").split("-")[0]
    response.say(_GOODBYE.get(language, _GOODBYE["en"]), **say_attributes(line))
    response.hangup()
    return str(response)


def not_in_service() -> str:
    """For a number that belongs to no line: no language is known, so English, then hang up."""
    response = VoiceResponse()
    response.say("Sorry, this number is not in service. Goodbye.")
    response.hangup()
    return str(response)


def empty() -> str:
    return str(VoiceResponse())
