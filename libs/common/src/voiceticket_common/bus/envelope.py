"""CloudEvents 1.0 binary mode on Kafka headers: attributes as ``ce_*`` headers, data as the value."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..events import Event, event_class
from .port import DeadLetter

if TYPE_CHECKING:
    from ..sealing import Sealer

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"

Headers = list[tuple[str, bytes]]


class MalformedMessage(ValueError):
    """A record that is not a valid event of a known type and version (never retried)."""


@dataclass(frozen=True)
class Envelope:
    """An event with its CloudEvents attributes and trace context."""

    event: Event
    id: str
    source: str
    time: datetime
    extra_headers: dict[str, str] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return self.event.ce_type()

    @property
    def subject(self) -> str:
        return self.event.subject


def envelope_for(event: Event, source: str, discriminator: str = "") -> Envelope:
    return Envelope(
        event=event,
        id=event.deterministic_id(discriminator),
        source=source,
        time=event.occurred_at,
    )


def encode(envelope: Envelope) -> tuple[bytes, bytes, Headers]:
    """Key, value and headers of the Kafka record for ``envelope``."""

    headers: Headers = [
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", envelope.id.encode()),
        ("ce_type", envelope.type.encode()),
        ("ce_source", envelope.source.encode()),
        ("ce_time", envelope.time.isoformat().encode()),
        ("ce_subject", envelope.subject.encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]
    headers += [(k, v.encode()) for k, v in envelope.extra_headers.items()]
    value = envelope.event.model_dump_json().encode()
    return envelope.event.key.encode(), value, headers


def header_map(headers: Headers | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, raw in headers or []:
        try:
            out[name] = raw.decode() if raw is not None else ""
        except UnicodeDecodeError:
            out[name] = ""
    return out


def _parse(
    value: bytes | None, headers: Headers | None
) -> tuple[type[Event], dict[str, Any], dict[str, str]]:
    attrs = header_map(headers)
    ce_type = attrs.get("ce_type")
    if not ce_type:
        raise MalformedMessage("missing ce_type header")
    if attrs.get("ce_specversion") != SPEC_VERSION:
        raise MalformedMessage(f"unsupported ce_specversion {attrs.get('ce_specversion')!r}")
    try:
        cls = event_class(ce_type)
    except LookupError as exc:
        raise MalformedMessage(str(exc)) from None
    if value is None:
        raise MalformedMessage("empty value")
    try:
        data = json.loads(value)
    except ValueError:
        raise MalformedMessage(f"invalid {ce_type} payload (not JSON)") from None
    if not isinstance(data, dict):
        raise MalformedMessage(f"invalid {ce_type} payload (not an object)")
    return cls, data, attrs


def _build(cls: type[Event], data: dict[str, Any], attrs: dict[str, str]) -> Envelope:
    ce_type = attrs.get("ce_type", "")
    try:
        # A tolerant reader: a newer producer may add optional fields (a compatible schema
        # change); this consumer ignores what it does not know. Producers stay strict.
        event = cls.model_validate(data, extra="ignore")
    except (ValueError, TypeError) as exc:
        # pydantic errors quote input values, which may be personal data: keep only locations.
        locations = getattr(exc, "errors", None)
        where = (
            ", ".join(".".join(str(p) for p in e["loc"]) + ": " + e["type"] for e in locations())
            if callable(locations)
            else "not JSON"
        )
        raise MalformedMessage(f"invalid {ce_type} payload ({where})") from None
    try:
        time = datetime.fromisoformat(attrs.get("ce_time", ""))
    except ValueError:
        time = event.occurred_at
    extra = {k: v for k, v in attrs.items() if not k.startswith("ce_") and k != "content-type"}
    return Envelope(
        event=event,
        id=attrs.get("ce_id", ""),
        source=attrs.get("ce_source", ""),
        time=time,
        extra_headers=extra,
    )


def decode(value: bytes | None, headers: Headers | None) -> Envelope:
    """Parse and validate a record; raises MalformedMessage with a reason that holds no payload.
    A record with sealed personal fields needs ``open_record``."""

    cls, data, attrs = _parse(value, headers)
    return _build(cls, data, attrs)


async def seal_record(envelope: Envelope, sealer: Sealer | None) -> tuple[bytes, bytes, Headers]:
    """``encode`` with the event's personal fields sealed under its call's key (``sealer``; None:
    in clear). Raises ``sealing.CallErased`` when the call's key is destroyed."""

    key, value, headers = encode(envelope)
    if sealer is not None:
        value = await sealer.seal(envelope.event)
    return key, value, headers


async def open_record(value: bytes | None, headers: Headers | None, sealer: Sealer | None) -> Envelope:
    """``decode`` for records that may hold sealed personal fields. Raises ``sealing.CallErased``
    when the call's key is destroyed (the record is to be dropped), MalformedMessage when the
    sealed fields do not open, TransientError when the keys cannot be reached."""

    from ..sealing import SEALED, UnreadableSeal

    cls, data, attrs = _parse(value, headers)
    if SEALED in data:
        if sealer is None:
            raise MalformedMessage(f"sealed {attrs.get('ce_type')} record, and this reader has no keys")
        try:
            data = await sealer.open(data, purpose=attrs.get("ce_type", ""))
        except UnreadableSeal as exc:
            raise MalformedMessage(f"{attrs.get('ce_type')}: {exc}") from None
    return _build(cls, data, attrs)


# Dead letters: the original record's key, value and headers, plus ``dlq_*`` headers saying why.
_DLQ = "dlq_"


def dead_letter_headers(
    headers: Headers | None, *, topic: str, group: str, error_type: str, error: str, attempts: int
) -> Headers:
    """The original headers and the dead-letter reason (bounded, and free of payload)."""

    return [
        *(headers or []),
        ("dlq_original_topic", topic.encode()),
        ("dlq_consumer_group", group.encode()),
        ("dlq_error_type", error_type.encode()),
        ("dlq_error", error[:1000].encode()),
        ("dlq_attempts", str(attempts).encode()),
    ]


def original_headers(headers: Headers | None) -> Headers:
    """A dead letter's headers as the original record had them (for replay)."""

    return [(k, v) for k, v in headers or [] if not k.startswith(_DLQ)]


def read_dead_letter(letter_id: str, key: bytes | None, headers: Headers | None) -> DeadLetter:
    """The dead-letter value of a record from a dead-letter topic."""

    attrs = header_map(headers)
    attempts = attrs.get("dlq_attempts", "0")
    return DeadLetter(
        letter_id=letter_id,
        consumer_group=attrs.get("dlq_consumer_group", ""),
        call_sid=(key or b"").decode("utf-8", "replace"),
        event_type=attrs.get("ce_type", ""),
        original_topic=attrs.get("dlq_original_topic", ""),
        error_type=attrs.get("dlq_error_type", ""),
        error=attrs.get("dlq_error", ""),
        attempts=int(attempts) if attempts.isdecimal() else 0,
    )
