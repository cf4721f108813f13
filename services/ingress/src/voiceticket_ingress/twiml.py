"""The TwiML ingress answers with, per line: its language, voice, texts and recording limits."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from twilio.twiml.voice_response import VoiceResponse

from voiceticket_common import texts
from voiceticket_common.ivr import IvrMenu
from voiceticket_common.runtime_views import IngressLine

from .menu import hints as menu_hints

# <Say language> wants a locale ("de-DE"); lines store ISO 639-1 ("de"). The locale Twilio's
# voices most commonly pair with each language; a Google voice names its own locale.
_LOCALES = {
    "da": "da-DK", "de": "de-DE", "en": "en-US", "es": "es-ES", "fi": "fi-FI", "fr": "fr-FR",
    "it": "it-IT", "ja": "ja-JP", "ko": "ko-KR", "nb": "nb-NO", "nl": "nl-NL", "pl": "pl-PL",
    "pt": "pt-BR", "ru": "ru-RU", "sv": "sv-SE", "tr": "tr-TR", "zh": "zh-CN",
}  # fmt: skip
_GOOGLE_VOICE = re.compile(r"^Google\.([a-z]{2,3}-[A-Z]{2})-")
# The consent prompt of a press_key line (unless the line has its own), and what the caller hears
# around it; {key} is the key's spoken name.
_PROMPT = {
    "de": "Wenn Sie mit der Aufzeichnung einverstanden sind, drücken Sie bitte die Taste {key}.",
    "en": "To agree to this call being recorded, please press {key}.",
    "es": "Para aceptar la grabación de esta llamada, pulse {key}.",
    "fr": "Pour accepter l'enregistrement de cet appel, appuyez sur {key}.",
    "it": "Per acconsentire alla registrazione di questa chiamata, prema {key}.",
    "nl": "Om akkoord te gaan met het opnemen van dit gesprek, druk op {key}.",
}
_KEY_NAMES = {
    "de": {"*": "Stern", "#": "Raute"},
    "en": {"*": "star", "#": "hash"},
    "es": {"*": "asterisco", "#": "almohadilla"},
    "fr": {"*": "étoile", "#": "dièse"},
    "it": {"*": "asterisco", "#": "cancelletto"},
    "nl": {"*": "sterretje", "#": "hekje"},
}
_WRONG_KEY = {
    "de": "Das war leider nicht die richtige Taste.",
    "en": "Sorry, that was not the right key.",
    "es": "Lo sentimos, esa no es la tecla correcta.",
    "fr": "Désolé, ce n'était pas la bonne touche.",
    "it": "Spiacenti, non è il tasto giusto.",
    "nl": "Sorry, dat was niet de juiste toets.",
}
_NO_KEY = {
    "de": "Wir haben keine Taste erkannt.",
    "en": "We did not receive a key.",
    "es": "No hemos recibido ninguna tecla.",
    "fr": "Nous n'avons reçu aucune touche.",
    "it": "Non abbiamo ricevuto alcun tasto.",
    "nl": "We hebben geen toets ontvangen.",
}
_CONSENTED = {
    "de": "Vielen Dank. Bitte sprechen Sie Ihre Nachricht nach dem Signalton.",
    "en": "Thank you. Please leave your message after the tone.",
    "es": "Gracias. Deje su mensaje después de la señal.",
    "fr": "Merci. Veuillez laisser votre message après le signal sonore.",
    "it": "Grazie. Lasci il suo messaggio dopo il segnale acustico.",
    "nl": "Dank u. Spreek uw bericht in na de toon.",
}
_DECLINED = {
    "de": "Ihr Anruf wurde nicht aufgezeichnet. Auf Wiederhören.",
    "en": "Your call has not been recorded. Goodbye.",
    "es": "Su llamada no ha sido grabada. Adiós.",
    "fr": "Votre appel n'a pas été enregistré. Au revoir.",
    "it": "La sua chiamata non è stata registrata. Arrivederci.",
    "nl": "Uw gesprek is niet opgenomen. Tot ziens.",
}


# The IVR menu (ivr_menu): the built-in prompt, one sentence per option ({label}, {key}), then
# that a spoken choice works too; and what a caller hears before the menu is offered again.
_MENU_OPTION = {
    "de": "Für {label} drücken Sie {key}.",
    "en": "For {label}, press {key}.",
    "es": "Para {label}, pulse {key}.",
    "fr": "Pour {label}, appuyez sur {key}.",
    "it": "Per {label}, prema {key}.",
    "nl": "Voor {label}, druk op {key}.",
}
_MENU_SAY_IT = {
    "de": "Sie können Ihre Wahl auch sagen.",
    "en": "You can also say your choice.",
    "es": "También puede decir su opción.",
    "fr": "Vous pouvez aussi dire votre choix.",
    "it": "Può anche dire la sua scelta.",
    "nl": "U kunt uw keuze ook uitspreken.",
}
_MENU_INVALID = {
    "de": "Das ist leider keine der Auswahlmöglichkeiten.",
    "en": "Sorry, that is not one of the options.",
    "es": "Lo sentimos, esa no es una de las opciones.",
    "fr": "Désolé, ce n'est pas l'un des choix proposés.",
    "it": "Spiacenti, non è una delle opzioni.",
    "nl": "Sorry, dat is geen van de keuzes.",
}
_MENU_NO_INPUT = {
    "de": "Wir haben Ihre Wahl leider nicht erhalten.",
    "en": "Sorry, we did not get your choice.",
    "es": "Lo sentimos, no hemos recibido su opción.",
    "fr": "Désolé, nous n'avons pas reçu votre choix.",
    "it": "Spiacenti, non abbiamo ricevuto la sua scelta.",
    "nl": "Sorry, we hebben uw keuze niet ontvangen.",
}


def say_attributes(line: IngressLine) -> dict[str, str]:
    """``voice`` and ``language`` for every ``<Say>`` of a line.

    Twilio fails a ``<Say>`` whose voice does not speak its language, which would drop the call. So
    the locale follows the voice where the voice fixes it: a Google voice names its locale, and an
    Amazon Polly voice speaks exactly one (Polly.Joanna en-US, Polly.Vicki de-DE), so ``language``
    is left out for it. The basic voices (alice, man, woman) get the line's language as a locale.
    The line's voice must therefore be one that speaks the line's language; a built-in voice
    (the default ``Polly.Joanna``) is the built-in voice of the line's language (``texts.voice``).
    """
    voice = texts.voice(line.language, line.voice)
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

    The answer of a ``notice`` line. The notice is always said before `<Record>` (the view fills in
    the default notice when the line has none). Limits come from the line: ``max_recording_seconds``
    (maxLength), ``record_timeout_seconds`` (seconds of silence that end the recording) and
    ``record_finish_on_key`` (keys that end it).
    """
    response = VoiceResponse()
    say = say_attributes(line)
    response.say(greeting_text(line), **say)
    response.say(notice_text(line), **say)
    _record(response, line, record_action_url, recording_callback_url)
    return str(response)


def menu_gather(
    line: IngressLine, menu: IvrMenu, action_url: str, *, greeting: bool, retry_reason: str | None = None
) -> str:
    """The IVR menu: its prompt inside a ``<Gather input="dtmf speech" numDigits="1">``.

    As the consent ``<Gather>``: ``finishOnKey=""`` so ``*`` and ``#`` reach ``Digits``, and a
    ``<Redirect>`` to the same action for no input. ``language`` (a locale) and ``hints`` (the
    options' labels and phrases) help Twilio's speech recognition. ``greeting`` says the greeting
    first; ``retry_reason`` (``no_input``, ``invalid_input``) says politely why it is asked again.
    """
    language = _language(line)
    apology = {"invalid_input": _MENU_INVALID, "no_input": _MENU_NO_INPUT}.get(retry_reason or "")
    return _one_key_gather(
        line,
        action_url,
        greeting=greeting,
        apology=_text(apology, language) if apology else None,
        prompts=[menu_prompt(line, menu)],
        input="dtmf speech",
        timeout=menu.timeout_seconds,
        language=_LOCALES.get(language, "en-US"),
        hints=menu_hints(menu) or None,
    )


def menu_prompt(line: IngressLine, menu: IvrMenu) -> str:
    """The menu's own prompt, or the built-in one in the line's language naming each option."""
    if menu.prompt:
        return menu.prompt
    language = _language(line)
    names = _KEY_NAMES.get(language, _KEY_NAMES["en"])
    sentences = [
        _text(_MENU_OPTION, language).format(label=o.label, key=names.get(o.digit, o.digit))
        for o in menu.options
    ]
    return " ".join([*sentences, _text(_MENU_SAY_IT, language)])


def notice_and_record(line: IngressLine, record_action_url: str, recording_callback_url: str) -> str:
    """After the IVR menu, on a ``notice`` line: the recording notice, then `<Record>` (the
    greeting was said before the menu)."""
    response = VoiceResponse()
    response.say(notice_text(line), **say_attributes(line))
    _record(response, line, record_action_url, recording_callback_url)
    return str(response)


def speaking(line: IngressLine, language: str | None) -> IngressLine:
    """The line as the caller hears it once they chose an option in ``language`` (None: the line's)."""
    if not language or language == line.language:
        return line
    return line.model_copy(update={"language": language})


def consent_gather(
    line: IngressLine, action_url: str, *, greeting: bool, retry_reason: str | None = None
) -> str:
    """The answer of a ``press_key`` line: the notice and the consent prompt inside a one-key
    `<Gather>`, and no `<Record>`.

    ``finishOnKey=""`` so that every key, ``#`` too, reaches ``Digits``; without a key Twilio goes
    on to the `<Redirect>` after the `<Gather>`, which requests the same action without ``Digits``.
    ``greeting`` says the greeting first (the first prompt); ``retry_reason`` (``no_input`` or
    ``invalid_key``) says politely why the caller is asked again.
    """
    apology = {"invalid_key": _WRONG_KEY, "no_input": _NO_KEY}.get(retry_reason or "")
    return _one_key_gather(
        line,
        action_url,
        greeting=greeting,
        apology=_text(apology, _language(line)) if apology else None,
        prompts=[notice_text(line), consent_prompt(line)],
        input="dtmf",
        timeout=line.consent_timeout_seconds,
    )


def _one_key_gather(
    line: IngressLine,
    action_url: str,
    *,
    greeting: bool,
    apology: str | None,
    prompts: Sequence[str],
    input: str,
    timeout: int,
    **recognition: Any,
) -> str:
    """The greeting (``greeting``), the apology of a retry, then ``prompts`` inside a one-key
    ``<Gather>`` (``finishOnKey=""``: ``*`` and ``#`` reach ``Digits`` too), and a ``<Redirect>``
    to the same action for no input. ``recognition``: Gather's speech attributes."""
    response = VoiceResponse()
    say = say_attributes(line)
    if greeting:
        response.say(greeting_text(line), **say)
    if apology:
        response.say(apology, **say)
    gather = response.gather(
        input=input,
        num_digits=1,
        finish_on_key="",
        timeout=timeout,
        action=action_url,
        method="POST",
        **recognition,
    )
    for prompt in prompts:
        gather.say(prompt, **say)
    response.redirect(action_url, method="POST")
    return str(response)


def greeting_text(line: IngressLine) -> str:
    """The line's own greeting, or the built-in one in the line's language (``texts``)."""
    return texts.greeting(line.language, line.greeting)


def notice_text(line: IngressLine) -> str:
    """The line's own recording notice, or the built-in one in the line's language."""
    return texts.recording_notice(line.language, line.recording_notice)


def consent_prompt(line: IngressLine) -> str:
    """The line's ``consent_prompt``, or the built-in one in its language naming its key."""
    if line.consent_prompt:
        return line.consent_prompt
    language = _language(line)
    names = _KEY_NAMES.get(language, _KEY_NAMES["en"])
    return _text(_PROMPT, language).format(key=names.get(line.consent_key, line.consent_key))


def record_after_consent(line: IngressLine, record_action_url: str, recording_callback_url: str) -> str:
    """The caller pressed the consent key (having heard the notice): thank them, then `<Record>`."""
    response = VoiceResponse()
    response.say(_text(_CONSENTED, _language(line)), **say_attributes(line))
    _record(response, line, record_action_url, recording_callback_url)
    return str(response)


def consent_declined(line: IngressLine) -> str:
    """No consent: tell the caller nothing was recorded, in the line's language, then hang up."""
    response = VoiceResponse()
    response.say(_text(_DECLINED, _language(line)), **say_attributes(line))
    response.hangup()
    return str(response)


def _record(response: VoiceResponse, line: IngressLine, action_url: str, callback_url: str) -> None:
    response.record(
        action=action_url,
        method="POST",
        timeout=line.record_timeout_seconds,
        finish_on_key=line.record_finish_on_key,
        max_length=line.max_recording_seconds,
        play_beep=True,
        trim="trim-silence",
        recording_status_callback=callback_url,
        recording_status_callback_method="POST",
        recording_status_callback_event="completed absent",
    )


def _language(line: IngressLine) -> str:
    return (line.language or "en").split("-")[0]


def _text(table: dict[str, str], language: str) -> str:
    return table.get(language, table["en"])


def goodbye(line: IngressLine) -> str:
    """The `<Record action>` answer: thank the caller in the line's language, then hang up."""
    response = VoiceResponse()
    response.say(texts.goodbye(line.language), **say_attributes(line))
    response.hangup()
    return str(response)


def not_in_service() -> str:
    """For a number that belongs to no line: no language is known, so English, then hang up."""
    response = VoiceResponse()
    response.say("Sorry, this number is not in service. Goodbye.")
    response.hangup()
    return str(response)


def reject() -> str:
    """A screened caller on a line that makes nothing of them: rejected unanswered (a busy tone)."""
    response = VoiceResponse()
    response.reject(reason="busy")
    return str(response)


def empty() -> str:
    return str(VoiceResponse())
