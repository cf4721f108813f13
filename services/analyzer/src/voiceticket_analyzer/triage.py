"""A heuristic analysis for calls the language model cannot analyse, so no call is lost.

DESIGN §3: if speech-to-text or the LLM stays down past its retry budget, the request is still
created, with what can be had without the model and marked for triage. The same goes for a
voicemail without recognisable speech (a silent or noise-only recording) and for a model that
refuses or keeps answering off-schema. The analysis is deliberately plain: the summary is the
transcript's first sentence (or a fixed title when there is no transcript), the intent is the
line's default request type, the priority medium, the sentiment neutral, no entities; the
description tells the agent why and what to do, in the project's (the line's) language whatever
the line's mode and whatever the caller spoke (English, German, Spanish and French texts; English
for any other).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from voiceticket_common.events import Analysis, Priority, Sentiment

from .output_guard import one_line
from .prompt import SUMMARY_LIMIT

NO_SPEECH = "no_speech"
TRANSCRIPT_MISSING = "transcript_missing"
LLM_UNAVAILABLE = "llm_unavailable"
LLM_REFUSED = "llm_refused"
LLM_OUTPUT_INVALID = "llm_output_invalid"
REDACTION_FAILED = "redaction_failed"
"""The transcript (or the model's answer) could not be redacted, so it was withheld: no summary
from the caller's words, the agent listens to the recording."""

_TITLES = {
    "en": {NO_SPEECH: "Voicemail without recognisable speech", TRANSCRIPT_MISSING: "Voicemail not transcribed",
           REDACTION_FAILED: "Voicemail transcript withheld"},
    "de": {NO_SPEECH: "Sprachnachricht ohne erkennbare Sprache", TRANSCRIPT_MISSING: "Sprachnachricht nicht transkribiert",
           REDACTION_FAILED: "Transkript der Sprachnachricht zurückgehalten"},
    "es": {NO_SPEECH: "Mensaje de voz sin habla reconocible", TRANSCRIPT_MISSING: "Mensaje de voz sin transcribir",
           REDACTION_FAILED: "Transcripción del mensaje de voz retenida"},
    "fr": {NO_SPEECH: "Message vocal sans parole reconnaissable", TRANSCRIPT_MISSING: "Message vocal non transcrit",
           REDACTION_FAILED: "Transcription du message vocal retenue"},
}  # fmt: skip
_WHY = {
    "en": {
        NO_SPEECH: "The caller left a recording without recognisable speech.",
        TRANSCRIPT_MISSING: "Speech-to-text was unavailable, so this voicemail has no transcript.",
        LLM_UNAVAILABLE: "Automatic analysis was unavailable, so the summary is the caller's first sentence.",
        LLM_REFUSED: "Automatic analysis declined this call, so the summary is the caller's first sentence.",
        LLM_OUTPUT_INVALID: "Automatic analysis gave no usable result, so the summary is the caller's first sentence.",
        REDACTION_FAILED: "The transcript could not be checked for payment and identity data, so it was withheld.",
    },
    "de": {
        NO_SPEECH: "Die Aufnahme enthält keine erkennbare Sprache.",
        TRANSCRIPT_MISSING: "Die Spracherkennung war nicht verfügbar, daher gibt es kein Transkript.",
        LLM_UNAVAILABLE: "Die automatische Auswertung war nicht verfügbar; die Zusammenfassung ist der erste Satz des Anrufers.",
        LLM_REFUSED: "Die automatische Auswertung hat diesen Anruf abgelehnt; die Zusammenfassung ist der erste Satz des Anrufers.",
        LLM_OUTPUT_INVALID: "Die automatische Auswertung lieferte kein brauchbares Ergebnis; die Zusammenfassung ist der erste Satz des Anrufers.",
        REDACTION_FAILED: "Das Transkript konnte nicht auf Zahlungs- und Ausweisdaten geprüft werden und wurde zurückgehalten.",
    },
    "es": {
        NO_SPEECH: "La grabación no contiene habla reconocible.",
        TRANSCRIPT_MISSING: "El reconocimiento de voz no estaba disponible, así que no hay transcripción.",
        LLM_UNAVAILABLE: "El análisis automático no estaba disponible; el resumen es la primera frase de quien llamó.",
        LLM_REFUSED: "El análisis automático rechazó esta llamada; el resumen es la primera frase de quien llamó.",
        LLM_OUTPUT_INVALID: "El análisis automático no dio un resultado utilizable; el resumen es la primera frase de quien llamó.",
        REDACTION_FAILED: "No se pudo comprobar si la transcripción contenía datos de pago o de identidad, así que se retuvo.",
    },
    "fr": {
        NO_SPEECH: "L'enregistrement ne contient pas de parole reconnaissable.",
        TRANSCRIPT_MISSING: "La reconnaissance vocale était indisponible : il n'y a pas de transcription.",
        LLM_UNAVAILABLE: "L'analyse automatique était indisponible ; le résumé est la première phrase de l'appelant.",
        LLM_REFUSED: "L'analyse automatique a refusé cet appel ; le résumé est la première phrase de l'appelant.",
        LLM_OUTPUT_INVALID: "L'analyse automatique n'a pas donné de résultat exploitable ; le résumé est la première phrase de l'appelant.",
        REDACTION_FAILED: "La transcription n'a pas pu être vérifiée (données de paiement et d'identité) : elle a été retenue.",
    },
}  # fmt: skip
_ACTION = {
    "en": "Needs triage: please listen to the recording or read the transcript and set the request type and priority.",
    "de": "Bitte sichten: Aufnahme anhören oder Transkript lesen und Anfragetyp und Priorität setzen.",
    "es": "Requiere clasificación: escuche la grabación o lea la transcripción y fije el tipo de solicitud y la prioridad.",
    "fr": "À trier : écoutez l'enregistrement ou lisez la transcription, puis fixez le type de demande et la priorité.",
}  # fmt: skip
TRIAGE_MARKERS = tuple(_ACTION.values())
"""The sentence every triage description ends with, per language: what marks a request for triage
in Jira until jira-writer labels it from ``CallAnalyzed.degraded``."""

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


def triage_analysis(
    transcript: str, reason: str, intent: str, language: str, ticket_language: str | None
) -> Analysis:
    """The plain analysis described above; ``language`` is what the caller is taken to speak."""

    texts = ticket_language if ticket_language in _WHY else "en"
    title = _TITLES[texts].get(reason)
    summary = first_sentence(transcript) or title or _TITLES[texts][NO_SPEECH]
    return Analysis(
        summary=one_line(summary, SUMMARY_LIMIT),
        description=f"{_WHY[texts][reason]}\n\n{_ACTION[texts]}",
        intent=intent,
        entities=[],
        priority=Priority.MEDIUM,
        sentiment=Sentiment.NEUTRAL,
        language=language,
    )


def first_sentence(transcript: str) -> str:
    """The first sentence of at least three words (a bare "Hello." says nothing), else the first."""

    sentences = [s for s in _SENTENCE_END.split(" ".join(transcript.split())) if s]
    return next((s for s in sentences if len(s.split()) >= 3), sentences[0] if sentences else "")


def default_intent(request_types: Mapping[str, object], default_request_type_id: object) -> str:
    """The line's default request type's key, else "other" (jira-writer then files the request
    under the default type, since "other" is either mapped or unknown to it)."""

    for key, type_id in request_types.items():
        if default_request_type_id is not None and str(type_id) == str(default_request_type_id):
            return key
    return "other"
