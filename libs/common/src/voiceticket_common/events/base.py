"""The base of every event the services exchange.

An event is an immutable pydantic model with a stable type name and a major version. The pair picks
the Kafka topic (``voiceticket.<type>.v<version>``) and the CloudEvents ``ce_type``. A breaking change
is a new class with ``version = 2`` published side by side, never an edit of a released one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

# Fixed namespace so that an event's id is a pure function of (call, type): a replayed step
# produces the same id, which lets consumers and auditors recognise duplicates.
_EVENT_ID_NAMESPACE = uuid.UUID("0b7a3c52-6f0e-4d1e-9a57-3f2f1d6c9e11")

TOPIC_PREFIX = "voiceticket"
CALL_SID_PATTERN = r"^CA[0-9a-fA-F]{32}$"
CE_TYPE_PREFIX = "io.voiceticket"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """Base class of all events. Subclasses set ``event_type`` and ``version``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    version: ClassVar[int]

    tenant_id: str = Field(description="Tenant (Jira site and its settings) the call belongs to.")
    call_sid: str = Field(
        pattern=CALL_SID_PATTERN, description="Twilio CallSid; the key of every event of a call."
    )
    occurred_at: datetime = Field(default_factory=utcnow, description="When the fact happened (UTC).")

    @classmethod
    def topic(cls) -> str:
        return f"{TOPIC_PREFIX}.{cls.event_type}.v{cls.version}"

    @classmethod
    def ce_type(cls) -> str:
        return f"{CE_TYPE_PREFIX}.{cls.event_type}.v{cls.version}"

    @classmethod
    def schema_name(cls) -> str:
        return f"{cls.event_type}.v{cls.version}"

    @classmethod
    def personal_fields(cls) -> tuple[str, ...]:
        """The fields marked personal data (``json_schema_extra={"x-personal": True}``)."""

        return tuple(
            name
            for name, info in cls.model_fields.items()
            if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("x-personal")
        )

    @property
    def key(self) -> str:
        """The partitioning key: the CallSid, never a phone number."""
        return self.call_sid

    @property
    def subject(self) -> str:
        """The CloudEvents ``ce_subject``: what the event is about (the call's CallSid)."""
        return self.call_sid

    @classmethod
    def key_schema(cls) -> dict[str, str]:
        """The JSON Schema of the record key and ``ce_subject`` (the AsyncAPI document's)."""
        return {"type": "string", "pattern": CALL_SID_PATTERN, "description": "The CallSid."}

    def deterministic_id(self, discriminator: str = "") -> str:
        return str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"{self.call_sid}|{self.ce_type()}|{discriminator}"))
