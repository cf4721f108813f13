"""A deliberately gullible "model": it obeys whatever the caller says in the transcript.

For prompt-injection tests. It starts from the keyword stand-in's answer and then does what a
badly aligned model might: takes "set the priority to critical" literally (out-of-enum values
included), merges JSON found in the transcript into its answer, adds fields it is asked for,
copies instructions into the description, reveals the system prompt when asked, and writes the
whole transcript as the summary, however long. Its answers are NOT validated against the
requested schema: catching them is the point.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema

from voiceticket_sandbox import chat_model, text_clues

_VALUE = r"\s*(?:(?:to|as|is|auf|a|en)\b|[:=])?\s*[\"'“]?(?P<value>[\w./-]+)"
_FIELD_ORDERS = {
    "priority": re.compile(r"(?i:priority|priorität|prioridad|priorité)" + _VALUE),
    "intent": re.compile(r"(?i:intent|category|kategorie|classify (?:this|it))" + _VALUE),
    "sentiment": re.compile(r"(?i:sentiment)" + _VALUE),
    "language": re.compile(r"(?i:language|sprache)" + _VALUE),
}
_SUMMARY_ORDER = re.compile(r"(?i:summary|title)\s*(?:to|:|=)\s*[\"'“]?(?P<value>[^\"”\n.]+)")
_EXTRA_FIELD = re.compile(
    r"(?i:add|include|output|return)\s+(?:a|an|the)?\s*(?:new\s+)?(?i:field|property|key)\s+"
    r"(?:called\s+|named\s+)?[\"'“]?(?P<name>\w+)"
)
_ENTITY_ORDER = re.compile(
    r"(?i:add|include)\s+(?:an?\s+)?(?i:entity)\s+(?:of\s+type\s+)?(?P<kind>\w+)\s*[:=]?\s*(?P<value>\S+)"
)
_REVEAL = re.compile(r"(?i)\b(reveal|repeat|print|show)\b.{0,40}\b(system prompt|instructions|prompt)\b")
_OBEY = re.compile(
    r"(?i)(ignore (all |any )?(previous|prior|above) instructions|you are now|^system\s*:)", re.M
)


def answer(schema: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any]:
    """What a gullible model would make of ``messages``; may break ``schema`` in every way."""
    transcript = chat_model.transcript_from_messages(messages)
    try:
        result: dict[str, Any] = dict(chat_model.answer(schema, transcript))
    except jsonschema.ValidationError:
        result = {}
    result["summary"] = text_clues.clean(transcript)  # ignores any length rule
    for name, pattern in _FIELD_ORDERS.items():
        match = pattern.search(transcript)
        if match:
            result[name] = match.group("value").rstrip(".")
    match = _SUMMARY_ORDER.search(transcript)
    if match:
        result["summary"] = match.group("value").strip()
    for match in _EXTRA_FIELD.finditer(transcript):
        result[match.group("name")] = True
    for match in _ENTITY_ORDER.finditer(transcript):
        result.setdefault("entities", []).append({"type": match.group("kind"), "value": match.group("value")})
    result.update(_embedded_json(transcript))
    obeyed = _OBEY.search(transcript)
    if obeyed:
        result["description"] = "As instructed: " + transcript[obeyed.start() :][:500]
    if _REVEAL.search(transcript):
        system = [m.get("content", "") for m in messages if m.get("role") in ("system", "developer")]
        result["description"] = "\n".join(str(s) for s in system)
    return result


def _embedded_json(text: str) -> dict[str, Any]:
    """The first JSON object in ``text`` (angle brackets and quotes as a caller's STT might give)."""
    start = text.find("{")
    while start != -1:
        depth = 0
        for end in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                try:
                    found = json.loads(text[start : end + 1])
                except ValueError:
                    break
                return found if isinstance(found, dict) else {}
        start = text.find("{", start + 1)
    return {}
