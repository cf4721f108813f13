"""A deterministic "model" for structured outputs: fills a JSON schema from a call transcript.

It is not a language model. Known property names get values from keyword rules
(``text_clues``); anything else gets the plainest value its schema allows. The answer is validated
against the requested schema before it is returned, exactly as strict structured outputs promise.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema

from voiceticket_sandbox import text_clues

_TRANSCRIPT = re.compile(r"<transcript>(.*?)</transcript>", re.DOTALL)
# How a prompt asks for the texts in one language ("... in the language with ISO 639-1 code 'en'").
_REQUESTED_LANGUAGE = re.compile(r"language with ISO 639-1 code '([a-z]{2})'")
_URGENCY_RANK = {
    "highest": 5, "critical": 5, "blocker": 5, "urgent": 5, "emergency": 5, "p1": 5,
    "high": 4, "major": 4, "p2": 4,
    "medium": 3, "normal": 3, "moderate": 3, "p3": 3,
    "low": 2, "minor": 2, "p4": 2,
    "lowest": 1, "trivial": 1, "p5": 1,
}  # fmt: skip
# Words a caller uses for the usual service-desk categories; a label scores on these too.
_LABEL_SYNONYMS = {
    "incident": ("down", "outage", "broken", "crash", "error", "fail", "failing", "unable",
                 "cannot", "urgent", "stopped", "working"),
    "outage": ("down", "offline", "unreachable", "outage"),
    "service": ("need", "request", "install", "access", "setup", "new"),
    "request": ("need", "please", "could", "would", "access"),
    "question": ("how", "what", "why", "when", "wonder", "wondering", "question", "know"),
    "complaint": ("unhappy", "angry", "frustrated", "disappointed", "terrible", "unacceptable",
                  "complain"),
    "billing": ("invoice", "bill", "charge", "charged", "payment", "refund", "price"),
    "password": ("password", "login", "locked", "sign", "passwort", "anmelden"),
    "access": ("login", "locked", "permission", "access"),
}  # fmt: skip
_KIND_WORDS = {
    "account_number": ("account",),
    "order_number": ("order",),
    "email": ("email", "mail"),
    "phone_number": ("phone", "tel", "mobile"),
    "person_name": ("person", "name", "caller", "customer"),
}


def transcript_from_messages(messages: list[dict[str, Any]]) -> str:
    """The text between ``<transcript>`` markers in the user messages, else the last user message."""
    user_texts = [_text_of(m.get("content")) for m in messages if m.get("role") == "user"]
    for text in reversed(user_texts):
        match = _TRANSCRIPT.search(text)
        if match:
            return match.group(1).strip()
    return user_texts[-1].strip() if user_texts else ""


def requested_language(messages: list[dict[str, Any]]) -> str | None:
    """The language the system messages ask the texts to be written in, if they name one."""
    for message in messages:
        if message.get("role") in ("system", "developer"):
            match = _REQUESTED_LANGUAGE.search(_text_of(message.get("content")))
            if match:
                return match.group(1)
    return None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def answer(schema: dict[str, Any], transcript: str, write_in: str | None = None) -> Any:
    """An object for ``schema`` inferred from ``transcript``; raises ValidationError if the rules
    could not satisfy the schema.

    ``write_in``: the language the summary and description are asked for. This model cannot
    translate: when the transcript is in another language, it marks them as translated, ``[en] ...``
    (the caller's words after the marker), so a test sees that the request reached the model and
    the answer came back as asked."""
    value = _Filler(schema, transcript, write_in).fill(schema, None)
    jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(schema).validate(
        value
    )
    return value


class _Filler:
    def __init__(self, root: dict[str, Any], transcript: str, write_in: str | None = None) -> None:
        self.root = root
        self.text = text_clues.clean(transcript)
        spoken = text_clues.guess_language(self.text)
        self.marker = f"[{write_in}] " if write_in and write_in != spoken else ""

    def resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            target: Any = self.root
            for key in node["$ref"].removeprefix("#").strip("/").split("/"):
                if key:
                    target = target[key.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def fill(self, node: Any, name: str | None) -> Any:
        node = self.resolve(node)
        if not isinstance(node, dict):
            return None
        if "const" in node:
            return node["const"]
        if "enum" in node:
            return self.choose(node["enum"], name)
        branches = node.get("anyOf") or node.get("oneOf")
        if branches:
            resolved = [self.resolve(b) for b in branches]
            concrete = [b for b in resolved if b.get("type") != "null"]
            if len(concrete) < len(resolved) and not self.knows(name):
                return None
            return self.fill(concrete[0] if concrete else resolved[0], name)
        kinds = node.get("type", "object" if "properties" in node else "string")
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        concrete_kinds = [k for k in kinds if k != "null"]
        if not concrete_kinds or ("null" in kinds and not self.knows(name)):
            return None
        return self.fill_type(concrete_kinds[0], node, name)

    def fill_type(self, kind: str, node: dict[str, Any], name: str | None) -> Any:
        if kind == "object":
            return {prop: self.fill(sub, prop) for prop, sub in node.get("properties", {}).items()}
        if kind == "array":
            if _is(name, "entities") or _is(name, "entity"):
                return self.entities(node.get("items", {}))
            return [self.fill(node.get("items", {}), None) for _ in range(node.get("minItems", 0))]
        if kind == "string":
            return _clip(self.string_for(name), node)
        if kind in ("integer", "number"):
            low = node.get("minimum", node.get("exclusiveMinimum", 0))
            return max(0, low + (1 if "exclusiveMinimum" in node else 0))
        if kind == "boolean":
            return False
        return None

    def knows(self, name: str | None) -> bool:
        return self.role(name) is not None

    @staticmethod
    def role(name: str | None) -> str | None:
        n = (name or "").lower()
        for role, suffixes in (
            ("summary", ("summary", "title", "subject")),
            ("description", ("description", "details")),
            ("transcript", ("transcript",)),
            ("intent", ("intent", "category")),
            ("priority", ("priority", "urgency")),
            ("sentiment", ("sentiment", "tone", "mood")),
            ("language", ("language", "language_code", "lang")),
            ("entities", ("entities",)),
        ):
            if n.endswith(suffixes):
                return role
        return None

    def string_for(self, name: str | None) -> str:
        role = self.role(name)
        if role == "summary":
            return (self.marker + text_clues.summary_sentence(self.text))[:255]
        if role == "description":
            return self.marker + self.text
        if role == "transcript":
            return self.text
        if role == "intent":
            return " ".join(text_clues.summary_sentence(self.text).rstrip(".!?").split()[:8])
        if role == "priority":
            return "High" if text_clues.is_urgent(self.text) else "Medium"
        if role == "sentiment":
            return text_clues.sentiment(self.text)
        if role == "language":
            return text_clues.guess_language(self.text)
        return ""

    def choose(self, options: list[Any], name: str | None) -> Any:
        role = self.role(name)
        texts = [str(o).lower() for o in options]
        if role == "priority":
            ranks = [_URGENCY_RANK.get(t, 3) for t in texts]
            if text_clues.is_urgent(self.text):
                return options[ranks.index(max(ranks))]
            if 3 in ranks:
                return options[ranks.index(3)]
            ordered = sorted(range(len(options)), key=lambda i: ranks[i])
            return options[ordered[len(ordered) // 2]]
        if role == "sentiment":
            wanted = text_clues.sentiment(self.text)[:3]
            return next((o for o, t in zip(options, texts, strict=True) if wanted in t), options[0])
        if role == "language":
            guess = text_clues.guess_language(self.text)
            return next((o for o, t in zip(options, texts, strict=True) if t == guess), options[0])
        return self.best_overlap(options, texts)

    def best_overlap(self, options: list[Any], texts: list[str]) -> Any:
        """The option whose words (and their usual synonyms) occur most in the transcript; a
        catch-all option when nothing overlaps."""
        spoken = text_clues.words(self.text)
        scores = []
        for text in texts:
            keys = [w for w in re.split(r"[^a-z0-9äöüß]+", text) if len(w) > 2]
            keys += [syn for k in keys for syn in _LABEL_SYNONYMS.get(k, ())]
            scores.append(sum(1 for w in spoken for k in keys if w.startswith(k[:5])))
        if max(scores, default=0) > 0:
            return options[scores.index(max(scores))]
        for catch_all in ("other", "general", "unknown", "none"):
            for option, text in zip(options, texts, strict=True):
                if catch_all in text:
                    return option
        return options[0]

    def entities(self, items: Any) -> list[Any]:
        items = self.resolve(items)
        properties = items.get("properties", {}) if isinstance(items, dict) else {}
        kind_key = next((k for k in ("type", "kind", "entity_type", "label") if k in properties), None)
        value_key = next((k for k in ("value", "text") if k in properties), None)
        if kind_key is None or value_key is None:
            return []
        result = []
        for entity in text_clues.entities(self.text):
            kind = self.kind_label(entity.kind, self.resolve(properties[kind_key]))
            if kind is None:
                continue
            item = {p: self.fill(s, p) for p, s in properties.items()}
            item[kind_key], item[value_key] = kind, entity.value
            result.append(item)
        return result

    def kind_label(self, kind: str, schema: Any) -> Any:
        options = schema.get("enum") if isinstance(schema, dict) else None
        if not options:
            return kind
        texts = [str(o).lower() for o in options]
        if kind in texts:
            return options[texts.index(kind)]
        for word in _KIND_WORDS[kind]:
            for option, text in zip(options, texts, strict=True):
                if word in text:
                    return option
        return options[texts.index("other")] if "other" in texts else None


def _is(name: str | None, word: str) -> bool:
    return (name or "").lower().endswith(word)


def _clip(text: str, node: dict[str, Any]) -> str:
    limit = node.get("maxLength")
    return text[:limit] if isinstance(limit, int) else text
