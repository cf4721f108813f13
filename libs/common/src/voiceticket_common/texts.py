"""What a line says and texts, per language: the built-in greeting, recording notice, goodbye, SMS
template and voice for en, de, fr, es (and a few more), and the rule that a line's own text wins.

A line stores its texts (config-api fills in the English defaults when none is given), so "the
line's own" is any text that is not one of the built-in ones: a stored built-in text, in whatever
language, or a blank one, means the built-in text in the language asked for. That way a German line
created without a greeting greets in German, and the same line's SMS to a French caller (auto mode)
is the French template, while a greeting the tenant wrote stays theirs.
"""

from __future__ import annotations

from collections.abc import Mapping

from .runtime_views import DEFAULT_GREETING, DEFAULT_RECORDING_NOTICE, DEFAULT_SMS_TEMPLATE, DEFAULT_VOICE

DEFAULT_LANGUAGE = "en"

GREETINGS: Mapping[str, str] = {
    "en": DEFAULT_GREETING,
    "de": "Vielen Dank für Ihren Anruf beim Support.",
    "fr": "Merci d'avoir appelé le support.",
    "es": "Gracias por llamar al servicio de asistencia.",
    "it": "Grazie per aver chiamato l'assistenza.",
    "nl": "Bedankt voor het bellen met de klantenservice.",
}
RECORDING_NOTICES: Mapping[str, str] = {
    "en": DEFAULT_RECORDING_NOTICE,
    "de": "Dieser Anruf wird aufgezeichnet und transkribiert, um ein Support-Ticket zu erstellen. "
    "Bitte sprechen Sie Ihre Nachricht nach dem Signalton und legen Sie auf, wenn Sie fertig sind.",
    "fr": "Cet appel est enregistré et transcrit pour créer un ticket de support. "
    "Veuillez laisser votre message après le signal sonore et raccrocher lorsque vous avez terminé.",
    "es": "Esta llamada se graba y se transcribe para crear un ticket de soporte. "
    "Deje su mensaje después de la señal y cuelgue cuando haya terminado.",
    "it": "Questa chiamata viene registrata e trascritta per creare un ticket di assistenza. "
    "Lasci il suo messaggio dopo il segnale acustico e riagganci quando ha finito.",
    "nl": "Dit gesprek wordt opgenomen en uitgeschreven om een supportticket aan te maken. "
    "Spreek uw bericht in na de toon en hang op wanneer u klaar bent.",
}
GOODBYES: Mapping[str, str] = {
    "en": "Thank you. Your message has been recorded. Goodbye.",
    "de": "Vielen Dank. Ihre Nachricht wurde aufgenommen. Auf Wiederhören.",
    "fr": "Merci. Votre message a été enregistré. Au revoir.",
    "es": "Gracias. Su mensaje ha sido grabado. Adiós.",
    "it": "Grazie. Il suo messaggio è stato registrato. Arrivederci.",
    "nl": "Dank u. Uw bericht is opgenomen. Tot ziens.",
}
SMS_TEMPLATES: Mapping[str, str] = {
    "en": DEFAULT_SMS_TEMPLATE,
    "de": "Danke für Ihren Anruf. Ihre Support-Anfrage {request_key} wurde erstellt.",
    "fr": "Merci de votre appel. Votre demande de support {request_key} a été créée.",
    "es": "Gracias por su llamada. Su solicitud de soporte {request_key} ha sido creada.",
    "it": "Grazie per la chiamata. La sua richiesta di assistenza {request_key} è stata creata.",
    "nl": "Bedankt voor uw oproep. Uw supportverzoek {request_key} is aangemaakt.",
}
REPEAT_SMS_TEMPLATES: Mapping[str, str] = {
    "en": "Thanks for calling again. Your call has been added to your support request {request_key}.",
    "de": "Danke für Ihren erneuten Anruf. Ihr Anruf wurde zu Ihrer Support-Anfrage {request_key} hinzugefügt.",
    "fr": "Merci de votre nouvel appel. Il a été ajouté à votre demande de support {request_key}.",
    "es": "Gracias por volver a llamar. Su llamada se ha añadido a su solicitud de soporte {request_key}.",
    "it": "Grazie per aver richiamato. La chiamata è stata aggiunta alla sua richiesta di assistenza {request_key}.",
    "nl": "Bedankt dat u opnieuw belt. Uw oproep is toegevoegd aan uw supportverzoek {request_key}.",
}
"""The SMS of a repeat call added to the caller's open request (``ticket.created.added_to_existing``)."""
VOICES: Mapping[str, str] = {
    "en": DEFAULT_VOICE,  # Amazon Polly voices speak exactly one language (en-US here)
    "de": "Polly.Vicki",  # de-DE
    "fr": "Polly.Lea",  # fr-FR
    "es": "Polly.Lucia",  # es-ES
    "it": "Polly.Bianca",  # it-IT
    "nl": "Polly.Laura",  # nl-NL
}


def base_language(language: str | None) -> str:
    """``de`` of ``de``, ``de-AT`` or ``DE``; the default language for None or blank."""
    return (language or DEFAULT_LANGUAGE).split("-")[0].strip().lower() or DEFAULT_LANGUAGE


def text_for(texts: Mapping[str, str], language: str | None, own: str | None = None) -> str:
    """The line's ``own`` text unless it is blank or a built-in one; else the built-in text in
    ``language`` (English where there is none in that language)."""
    if own and own.strip() and own not in texts.values():
        return own
    return texts.get(base_language(language), texts[DEFAULT_LANGUAGE])


def greeting(language: str | None, own: str | None = None) -> str:
    return text_for(GREETINGS, language, own)


def recording_notice(language: str | None, own: str | None = None) -> str:
    return text_for(RECORDING_NOTICES, language, own)


def goodbye(language: str | None) -> str:
    return text_for(GOODBYES, language)


def sms_template(language: str | None, own: str | None = None) -> str:
    return text_for(SMS_TEMPLATES, language, own)


def repeat_sms_template(language: str | None) -> str:
    return text_for(REPEAT_SMS_TEMPLATES, language)


def voice(language: str | None, own: str | None = None) -> str:
    """The line's voice unless it is a built-in one (which speaks one language only): then the
    built-in voice of ``language``, so the voice always speaks the language of the text."""
    return text_for(VOICES, language, own)
