"""Version 1 of the call lifecycle events, and of ``config.changed`` (see docs/events.md).

Personal data is kept to what a consumer needs: the caller's number travels to jira-writer (issue
property or custom field) and notifier (the SMS); the transcript travels to analyzer and jira-writer.
Secrets never travel in events.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar, TypedDict

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from .base import CALL_SID_PATTERN, Event

E164 = r"^\+[1-9]\d{6,14}$"

CONFIG_EVENT_NAMESPACE = uuid.UUID("5d0f6b1e-2c4a-4f7e-8b39-9a1c7e3d2f60")
"""The namespace of ``config.changed`` ids (a change's version names it)."""

PERSONAL: JsonDict = {"x-personal": True}
"""Marks a field as personal data: sealed on the bus under the call's data key (docs/events.md,
"Sealed personal data"), so that erasing the key erases the field everywhere it was copied."""


class CarriedContext(TypedDict):
    """The fields every event of a call after ``call.received`` repeats."""

    tenant_id: str
    call_sid: str
    line_number: str
    caller_number: str
    consent: str | None
    screened: str | None
    ivr_choice: IvrChoice | None


class IvrChoice(BaseModel):
    """What the caller chose in the line's IVR menu (no personal data: the option, not their words)."""

    model_config = ConfigDict(frozen=True)

    digit: str = Field(description="The option's key (0-9, * or #).")
    label: str = Field(description="The option's label, as the line's ivr_menu names it.")
    request_type_id: str | None = Field(
        default=None,
        description="The JSM request type the request goes to, whatever the analysis' intent; None: "
        "the analysis decides as without a menu.",
    )
    language: str | None = Field(
        default=None,
        description="ISO 639-1: the call's language from the choice on (the prompts, the speech-to-text "
        "hint, the request in enforced mode); None: the line's.",
    )
    input: str = Field(description="How the caller chose: dtmf (a key) or speech (the option's words).")


CONSENT_NOTICE = "notice"
"""The caller heard the recording notice (the line's ``consent_mode`` ``notice``)."""
CONSENT_PRESSED = "pressed"
"""The caller heard the notice and pressed the line's consent key (``consent_mode`` ``press_key``)."""
CONSENT_DECLINED = "declined"
"""The caller did not press the consent key: nothing was recorded (``call.consent.declined``)."""

SCREENED_SILENCE = "silence"
"""Screened on the audio (transcriber): no sound worth transcribing."""
SCREENED_TONE = "tone"
"""Screened on the audio: tones only (a dial or busy tone, DTMF, a fax or modem), no voice."""
SCREENED_TOO_SHORT = "too_short"
"""Screened on the audio: less voice than the line's ``min_message_seconds``."""
SCREENED_ROBOCALL = "robocall"
"""Screened by ingress: Twilio's caller data (a spam-score add-on) flags the call as spam."""
SCREENED_BLOCKED_CALLER = "blocked_caller"
"""Screened by ingress: the caller is on the tenant's block list (config-api, by a keyed hash)."""


class _CallContext(Event):
    line_number: str = Field(description="The support number that was called (Twilio `To`).")
    caller_number: str = Field(
        description="The caller (Twilio `From`), personal data.", json_schema_extra=PERSONAL
    )
    consent: str | None = Field(
        default=None,
        description="How the caller agreed to the recording: notice (heard the recording notice), "
        "pressed (heard it and pressed the line's consent key) or declined (did not press it; nothing "
        "was recorded). None: not decided yet (call.received of a press_key line) or from a producer "
        "that predates consent, where notice was the only mode.",
    )
    screened: str | None = Field(
        default=None,
        description="Why the call was screened, when it was: silence, tone or too_short (measured on "
        "the recording by the transcriber), blocked_caller or robocall (ingress, from the tenant's "
        "block list or Twilio's caller data). What "
        "follows is the line's screening_action: a request as any other (request), one in the line's screened request type (screened_request), or none "
        "(no_request: call.screened ends the call). None: not screened.",
    )
    ivr_choice: IvrChoice | None = Field(
        default=None,
        description="The caller's choice in the line's IVR menu (ivr_menu); its request type overrides "
        "the analysis' intent and its language is the call's. None: no menu, no choice made (no input, "
        "or invalid input on every attempt: the analysis decides as without a menu), call.received "
        "(the menu follows it), or a producer that predates menus.",
    )

    def call_context(self) -> CarriedContext:
        """What every later event of the call carries forward: ``NextEvent(**e.call_context(), ...)``."""

        return {
            "tenant_id": self.tenant_id,
            "call_sid": self.call_sid,
            "line_number": self.line_number,
            "caller_number": self.caller_number,
            "consent": self.consent,
            "screened": self.screened,
            "ivr_choice": self.ivr_choice,
        }


class CallReceived(_CallContext):
    """Ingress answered an incoming call: the greeting and the recording notice, then `<Record>`
    (consent notice) or, on a line that asks for consent by key, a `<Gather>` for the key (consent
    still None)."""

    event_type: ClassVar[str] = "call.received"
    version: ClassVar[int] = 1

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")


class RecordingCompleted(_CallContext):
    """Twilio reported a finished recording whose media can be downloaded."""

    event_type: ClassVar[str] = "call.recording.completed"
    version: ClassVar[int] = 1

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    recording_sid: str = Field(pattern=r"^RE[0-9a-fA-F]{32}$")
    recording_url: str = Field(description="Twilio media URL without extension (needs basic auth).")
    duration_seconds: int = Field(ge=0)
    channels: int = Field(default=1, ge=1, le=2)


class RecordingAbsent(_CallContext):
    """Twilio reported no usable recording (too short, silent, or failed)."""

    event_type: ClassVar[str] = "call.recording.absent"
    version: ClassVar[int] = 1

    status: str = Field(description="Twilio RecordingStatus: absent or failed.")
    error_code: str | None = Field(default=None, description="Twilio ErrorCode, e.g. 16101.")


class ConsentDeclined(_CallContext):
    """The caller of a line that asks for consent by key did not press it: nothing was recorded."""

    event_type: ClassVar[str] = "call.consent.declined"
    version: ClassVar[int] = 1

    reason: str = Field(
        description="no_input (no key before the timeout) or invalid_key (another key), on the last prompt."
    )
    attempts: int = Field(
        ge=1, le=2, description="How many times the caller was asked (1, or 2 with a repeat)."
    )


class CallScreened(_CallContext):
    """The call was screened and, as its line says (``screening_action`` no_request), makes no
    request: the calls page and ``voiceticket_calls_screened_total`` show it with its reason."""

    event_type: ClassVar[str] = "call.screened"
    version: ClassVar[int] = 1

    reason: str = Field(description="silence, tone, too_short, blocked_caller or robocall (as ``screened``).")
    by: str = Field(description="transcriber (measured on the recording) or ingress (the caller).")
    recording_sid: str | None = Field(default=None, description="The recording screened (transcriber).")
    duration_seconds: int | None = Field(default=None, ge=0, description="The recording's length (Twilio).")
    sounding_seconds: float | None = Field(
        default=None, ge=0, description="Seconds of sound above the speech threshold (as far as read)."
    )
    voice_seconds: float | None = Field(
        default=None, ge=0, description="Of those, seconds that were not tones (voice, noise, music)."
    )


class _RecordingContext(_CallContext):
    """What the events about a call's recording (its transcript, its analysis) say of it."""

    recording_sid: str
    duration_seconds: int = Field(ge=0)


class TranscriptSegment(BaseModel):
    """One stretch of recognised speech and how sure the engine was of it. No text: the transcript
    carries that (redacted), and timings and probabilities are not personal data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_seconds: float = Field(ge=0, description="Offset of the segment in the recording.")
    end_seconds: float = Field(ge=0)
    confidence: float = Field(
        ge=0,
        le=1,
        description="The engine's probability of its own text: exp(average token log-probability).",
    )
    no_speech_probability: float = Field(
        ge=0, le=1, description="The engine's estimate that this is not speech."
    )


class CallTranscribed(_RecordingContext):
    """The recording was turned into text."""

    event_type: ClassVar[str] = "call.transcribed"
    version: ClassVar[int] = 1

    transcript: str = Field(description="What the caller said, personal data.", json_schema_extra=PERSONAL)
    language: str | None = Field(default=None, description="ISO 639-1 if known.")
    model: str = Field(description="Speech-to-text model that produced the transcript.")
    transcript_missing: bool = Field(
        default=False,
        description="Speech-to-text stayed unavailable past its retry budget: the transcript is empty "
        "although the caller may have spoken, and the request needs triage. An empty transcript "
        "without this flag means no recognisable speech.",
    )
    estimated_cost_usd: float | None = Field(
        default=None, ge=0, description="Estimated speech-to-text spend for this call (not an invoice)."
    )
    redactions: dict[str, int] | None = Field(
        default=None,
        description="What redaction replaced in the transcript before it was published: kind -> count "
        '(e.g. {"payment_card": 1}), never values. {} when nothing was found; None from a transcriber '
        "that did not redact (the analyzer then redacts the transcript itself).",
    )
    redaction_failed: bool = Field(
        default=False,
        description="The transcript could not be redacted (too long for the engine, or an unusable "
        "tenant policy): it is withheld (a placeholder stands in for it) and the request needs triage.",
    )
    detected_language: str | None = Field(
        default=None,
        description="ISO 639-1 code of the language the engine heard (the local engine reports it); "
        "None when the engine did not say.",
    )
    detected_language_probability: float | None = Field(default=None, ge=0, le=1)
    segments: list[TranscriptSegment] | None = Field(
        default=None,
        description="Per-segment timings and confidence, in order (the local engine reports them); "
        "None when the engine did not say.",
    )


class Priority(StrEnum):
    LOWEST = "lowest"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    HIGHEST = "highest"


class Sentiment(StrEnum):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


class Entity(BaseModel):
    """A fact the caller gave: a name, an account or order number, an email, an address."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    value: str


class Analysis(BaseModel):
    """What the LLM made of the transcript, validated against the strict schema."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    summary: str = Field(max_length=255)
    description: str
    intent: str
    entities: list[Entity] = Field(default_factory=list)
    priority: Priority
    sentiment: Sentiment
    language: str = Field(description="Language the caller spoke, ISO 639-1.")


class CallAnalyzed(_RecordingContext):
    """The transcript was analysed into ticket fields."""

    event_type: ClassVar[str] = "call.analyzed"
    version: ClassVar[int] = 1

    transcript: str = Field(
        description="The (redacted) transcript the analysis was made from, personal data.",
        json_schema_extra=PERSONAL,
    )
    analysis: Analysis = Field(
        description="The analysis; its texts and entities are personal data.", json_schema_extra=PERSONAL
    )
    model: str
    degraded: bool = Field(
        default=False,
        description="The analysis is a heuristic stand-in, not the language model's (no recognisable "
        "speech, transcript missing, or the model unavailable, refusing or off-schema past its retry "
        "budget): the request needs a person's triage.",
    )
    degraded_reason: str | None = Field(
        default=None,
        description="Why, when degraded: no_speech, transcript_missing, llm_unavailable, llm_refused, "
        "llm_output_invalid or redaction_failed.",
    )
    redactions: dict[str, int] | None = Field(
        default=None,
        description="What redaction replaced in the transcript and in the analysis' texts (summary, "
        "description, entity values) before they were published: kind -> count, never values. {} when "
        "nothing was found; None from an analyzer that did not redact.",
    )
    ticket_language: str | None = Field(
        default=None,
        description="ISO 639-1 code of the language the summary and description are written in: the "
        "line's in enforced mode (translated when the caller spoke another, analysis.language), the "
        "caller's in auto mode. None from an analyzer before it said: analysis.language.",
    )
    prompt_tokens: int | None = Field(default=None, ge=0, description="Language-model prompt tokens.")
    completion_tokens: int | None = Field(default=None, ge=0, description="Language-model output tokens.")
    estimated_cost_usd: float | None = Field(
        default=None,
        ge=0,
        description="Estimated OpenAI spend for this call, speech-to-text and analysis together, from "
        "the configured price table (not an invoice); None when no model used had a price.",
    )


class TicketCreated(_CallContext):
    """A JSM request exists for the call."""

    event_type: ClassVar[str] = "ticket.created"
    version: ClassVar[int] = 1

    issue_key: str
    issue_id: str
    service_desk_id: str
    request_type_id: str
    summary: str = Field(
        max_length=255, description="The request's summary, personal data.", json_schema_extra=PERSONAL
    )
    language: str | None = Field(
        default=None,
        description="ISO 639-1 code of the language the request is written in (the SMS to the caller "
        "is in it too): the line's in enforced mode, the caller's in auto mode.",
    )
    added_to_existing: bool = Field(
        default=False,
        description="True: no request was created; the call was added as an internal comment to the "
        "caller's open request issue_key (a repeat caller on a line with repeat_callers comment); "
        "summary is this call's. The SMS then says the call was added to it. Absent (older "
        "producers): a new request.",
    )


class NotificationSent(Event):
    """The caller was sent an SMS with the request key."""

    event_type: ClassVar[str] = "notification.sent"
    version: ClassVar[int] = 1

    issue_key: str
    message_sid: str
    segments: int | None = None


class NotificationFailed(Event):
    """No SMS went out: opted out, invalid or landline number, or retries exhausted (a line with SMS
    off produces no notification event at all)."""

    event_type: ClassVar[str] = "notification.failed"
    version: ClassVar[int] = 1

    issue_key: str
    reason: str
    error_code: str | None = None
    retryable: bool = False


class NotificationDelivery(Event):
    """Twilio reported a delivery status of the caller's SMS (its StatusCallback, via ingress)."""

    event_type: ClassVar[str] = "notification.delivery"
    version: ClassVar[int] = 1

    message_sid: str = Field(pattern=r"^(SM|MM)[0-9a-fA-F]{32}$")
    status: str = Field(
        description="Twilio MessageStatus: queued, sent, delivered, undelivered, failed, read, ..."
    )
    error_code: str | None = Field(default=None, description="Twilio ErrorCode, e.g. 30003 (unreachable).")


class CallCompleted(Event):
    """Twilio reported the end of the call (the number's call status callback, via ingress)."""

    event_type: ClassVar[str] = "call.completed"
    version: ClassVar[int] = 1

    status: str = Field(description="Twilio CallStatus: completed, busy, failed, no-answer, canceled.")
    duration_seconds: int | None = Field(default=None, ge=0, description="Twilio CallDuration.")


# -- two-way SMS and status texts (issue #16, parts 3 and 4) -------------------------------------

MESSAGE_SID_PATTERN = r"^(SM|MM)[0-9a-fA-F]{32}$"
SMS_KEYWORD_STOP = "stop"
SMS_KEYWORD_START = "start"
SMS_KEYWORD_HELP = "help"


class _InboundSms(Event):
    """An event of one inbound SMS: keyed, sealed and deduplicated by its Twilio MessageSid (an SMS
    belongs to no call; ``call_sid`` holds the MessageSid, so the bus's key, ``ce_id`` and the
    sealing key all name the message, never a phone number)."""

    call_sid: str = Field(
        pattern=MESSAGE_SID_PATTERN,
        description="The inbound message's Twilio MessageSid (SM/MM...): the event's key, and the id "
        "its personal fields are sealed under (erased with the sender's other data).",
    )
    line_number: str = Field(description="Our number the message was sent to (Twilio `To`).")
    caller_number: str = Field(
        description="Who sent the message (Twilio `From`), personal data.", json_schema_extra=PERSONAL
    )

    @classmethod
    def key_schema(cls) -> dict[str, str]:
        return {"type": "string", "pattern": MESSAGE_SID_PATTERN, "description": "The inbound MessageSid."}


class SmsReceived(_InboundSms):
    """Someone texted one of our lines (Twilio's incoming message webhook, via ingress)."""

    event_type: ClassVar[str] = "sms.received"
    version: ClassVar[int] = 1

    body: str = Field(
        max_length=1600, description="The message text, personal data.", json_schema_extra=PERSONAL
    )
    keyword: str | None = Field(
        default=None,
        description="stop, start or help when the whole message is one of Twilio's opt-out, opt-in "
        "or help keywords (or Twilio's Advanced Opt-Out classified it: its OptOutType); None otherwise.",
    )
    keyword_answered_by_twilio: bool = Field(
        default=False,
        description="Twilio's Advanced Opt-Out matched the keyword (OptOutType was sent) and answered it.",
    )
    num_media: int = Field(default=0, ge=0, description="Twilio NumMedia: attachments are not read.")


class SmsReplyRouted(_InboundSms):
    """notifier: the text is a reply about the request we last texted this caller about; jira-writer
    comments it on that request if the request is still open."""

    event_type: ClassVar[str] = "sms.reply.routed"
    version: ClassVar[int] = 1

    issue_key: str
    request_call_sid: str = Field(pattern=CALL_SID_PATTERN, description="The call the request came from.")
    body: str = Field(
        max_length=1600, description="The message text, personal data.", json_schema_extra=PERSONAL
    )


SMS_REPLY_COMMENTED = "commented"
SMS_REPLY_REQUEST_CLOSED = "request_closed"


class SmsReplyCommented(_InboundSms):
    """jira-writer: the reply is a comment on the request (``commented``), or the request is no
    longer open (``request_closed``: Jira says its status category is done) and nothing was written."""

    event_type: ClassVar[str] = "sms.reply.commented"
    version: ClassVar[int] = 1

    issue_key: str
    outcome: str = Field(description="commented or request_closed.")
    comment_id: str | None = None


SMS_ANSWER_HELP = "help"
SMS_ANSWER_NO_OPEN_REQUEST = "no_open_request"
SMS_ANSWER_OPTED_OUT = "opted_out"
SMS_ANSWER_OPTED_IN = "opted_in"
SMS_ANSWER_NONE = "none"


class SmsAnswered(Event):
    """notifier: what became of an inbound SMS that needed no comment: an opt-out or opt-in
    remembered, the help text or a polite answer sent (or not sent). No personal data."""

    event_type: ClassVar[str] = "sms.answered"
    version: ClassVar[int] = 1

    call_sid: str = Field(pattern=MESSAGE_SID_PATTERN, description="The inbound message's MessageSid.")
    action: str = Field(
        description="opted_out (STOP remembered), opted_in (START), help (the line's help text), "
        "no_open_request (a polite answer: no open request of theirs to add the reply to), none."
    )
    reply_message_sid: str | None = Field(
        default=None, description="Our answer's MessageSid, if one was sent."
    )
    error_code: str | None = Field(
        default=None, description="Twilio's error code when the answer was refused."
    )


STATUS_CATEGORY_DONE = "done"
REQUEST_EVENT_NAMESPACE = uuid.UUID("8e3f0c6a-41d2-4b7e-9f5a-2c6d8b1e7a94")
"""The namespace of a Jira request's event ids (tenant, issue and changelog id name one)."""


class _RequestEvent(Event):
    """An event of a Jira request rather than of a call: no CallSid; keyed by the issue key."""

    call_sid: ClassVar[str] = ""  # type: ignore[misc]

    issue_key: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,254}-[1-9][0-9]{0,17}$")
    changelog_id: str = Field(
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="Jira's changelog id of the transition (one per status change): the dedupe key.",
    )

    @property
    def key(self) -> str:
        return f"{self.tenant_id}|{self.issue_key}"

    @property
    def subject(self) -> str:
        return self.issue_key

    @classmethod
    def key_schema(cls) -> dict[str, str]:
        return {"type": "string", "description": "<tenant id>|<issue key>."}

    def deterministic_id(self, discriminator: str = "") -> str:
        """The same id for every delivery of one transition (Jira retries a webhook)."""
        name = f"{self.tenant_id}|{self.issue_key}|{self.changelog_id}|{self.ce_type()}|{discriminator}"
        return str(uuid.uuid5(REQUEST_EVENT_NAMESPACE, name))


class RequestStatusChanged(_RequestEvent):
    """A request's status changed in Jira (Jira's signed webhook, via ingress). No personal data."""

    event_type: ClassVar[str] = "request.status_changed"
    version: ClassVar[int] = 1

    from_status: str | None = Field(default=None, max_length=255)
    to_status: str = Field(max_length=255)
    to_category: str | None = Field(
        default=None, description="The new status's category key: new, indeterminate or done."
    )

    @classmethod
    def of(cls, **fields: object) -> RequestStatusChanged:
        """Validated (type checkers read the removed ``call_sid`` as required)."""
        return cls.model_validate(fields)


class StatusTextSent(_RequestEvent):
    """notifier: the outcome of the status text for one transition of a request (at most one)."""

    event_type: ClassVar[str] = "status_text.sent"
    version: ClassVar[int] = 1

    to_status: str = Field(max_length=255)
    outcome: str = Field(description="sent, opted_out, rejected or unknown (a timeout: not resent).")
    message_sid: str | None = None
    error_code: str | None = None

    @classmethod
    def of(cls, **fields: object) -> StatusTextSent:
        return cls.model_validate(fields)


# -- configuration ------------------------------------------------------------------------------


class ConfigChangeKind(StrEnum):
    """What changed in config-api."""

    LINE = "line"
    """A line was created, replaced (moved to another tenant too) or deleted."""
    TENANT = "tenant"
    """A tenant was created or its settings were updated."""
    CREDENTIAL = "credential"
    """One of a tenant's credentials was set or rotated (the value never travels)."""
    TENANT_REMOVED = "tenant_removed"
    """A tenant was removed with its lines and credentials."""


class ConfigChanged(Event):
    """A tenant's or a line's configuration changed in config-api: services drop what they cached
    of it, so the next lookup fetches the new one (docs/architecture.md, "Config propagation").

    Not an event of a call: it has no CallSid (``call_sid`` is ``""``), its key and ``ce_subject``
    are the tenant id. Published through config-api's outbox, at least once and in the order of
    the changes; it carries no secret and no caller data (a line's number is the business's)."""

    event_type: ClassVar[str] = "config.changed"
    version: ClassVar[int] = 1
    # No call: the inherited field is removed from this event (pydantic drops a field that a
    # subclass redeclares as a ClassVar), and the bus's generic code reads "" (no call).
    call_sid: ClassVar[str] = ""  # type: ignore[misc]

    tenant_id: str = Field(description="The tenant whose configuration changed.")
    kind: ConfigChangeKind = Field(description="What changed: line, tenant, credential or tenant_removed.")
    line_numbers: list[Annotated[str, Field(pattern=E164)]] = Field(
        default_factory=list,
        description="The support numbers (E.164) whose runtime view changed: the line of a line "
        "change; every line the tenant had for the others. A business's number, not caller data.",
    )
    config_version: int = Field(
        ge=1,
        description="config-api's configuration version after the change: grows with every change, "
        "in the order the changes were committed (the outbox row's id).",
    )

    @classmethod
    def of(
        cls,
        tenant_id: str,
        kind: ConfigChangeKind,
        line_numbers: Sequence[str],
        config_version: int,
        occurred_at: datetime | None = None,
    ) -> ConfigChanged:
        """The event, validated. (Type checkers read the removed ``call_sid`` as a required
        argument of ``ConfigChanged(...)``; this constructor says what is needed.)"""
        data: dict[str, object] = {
            "tenant_id": tenant_id,
            "kind": kind,
            "line_numbers": list(line_numbers),
            "config_version": config_version,
        }
        if occurred_at is not None:
            data["occurred_at"] = occurred_at
        return cls.model_validate(data)

    @property
    def key(self) -> str:
        """The tenant: one tenant's changes stay in order on one partition."""
        return self.tenant_id

    @property
    def subject(self) -> str:
        return self.tenant_id

    @classmethod
    def key_schema(cls) -> dict[str, str]:
        return {"type": "string", "description": "The tenant id."}

    def deterministic_id(self, discriminator: str = "") -> str:
        """The same id for every publication of one change (a relay that publishes it again after
        a crash): consumers recognise the duplicate."""
        return str(
            uuid.uuid5(CONFIG_EVENT_NAMESPACE, f"{self.config_version}|{self.ce_type()}|{discriminator}")
        )
