"""API request/response models (admin API and seed file)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum, auto
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)

from voiceticket_common import runtime_views
from voiceticket_common.ivr import DEFAULT_MENU_ATTEMPTS, DEFAULT_MENU_TIMEOUT_SECONDS, normalized_words
from voiceticket_common.redaction import RedactionConfigError, RedactionPolicy
from voiceticket_common.sms_template import check_template

from . import db

E164_PATTERN = r"^\+[1-9]\d{6,14}$"
E164_RE = re.compile(E164_PATTERN)
TENANT_ID_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
TENANT_ID_HELP = "slug: lowercase letters, digits and '-', e.g. 'acme'"
# Every provider's credentials (Twilio auth tokens, OpenAI keys, Jira API and OAuth tokens) are
# visible ASCII, and they travel in HTTP headers: anything else (a no-break space, a zero-width
# space, a control character, an empty value) is a paste error, refused here with 422.
CREDENTIAL_PATTERN = r"^[!-~]+$"
CREDENTIAL_RE = re.compile(CREDENTIAL_PATTERN)
CREDENTIAL_HELP = (
    "1-4096 visible ASCII characters (no spaces, no invisible or control characters); "
    "surrounding whitespace is removed. Write-only: reads show a mask"
)


def _e164(v: str) -> str:
    if not E164_RE.match(v):
        raise ValueError("must be an E.164 phone number like +14155550100")
    return v


def _credential(v: SecretStr) -> SecretStr:
    if not CREDENTIAL_RE.fullmatch(v.get_secret_value()):
        raise ValueError("must be visible ASCII characters only (no spaces, invisible or control characters)")
    return v


def _http_url(v: str) -> str:
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("must not contain credentials, a query or a fragment")
    return v.rstrip("/")


def _sms_template(v: str) -> str:
    # the notifier renders with the same rules (voiceticket_common.sms_template)
    return check_template(v)


E164 = Annotated[str, AfterValidator(_e164)]
# The schema's pattern documents the rule; the validator applies it, with a readable message: an
# absolute http(s) URL without credentials, a query or a fragment.
HttpUrlStr = Annotated[
    str,
    Field(
        max_length=500,
        json_schema_extra={"pattern": r"^https?://[^\s/?#@:]+(?::\d{1,5})?(?:/[^\s?#]*)?$"},
        description="absolute http(s) URL without credentials, query or fragment",
    ),
    AfterValidator(_http_url),
]
TenantId = Annotated[str, Field(pattern=TENANT_ID_PATTERN, description=TENANT_ID_HELP)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)]
AccountSid = Annotated[str, Field(pattern=r"^AC[0-9a-fA-F]{32}$")]
ModelName = Annotated[str, Field(min_length=1, max_length=100)]
# pydantic cannot put a pattern constraint on SecretStr: the validator checks it, the schema says it.
Secret = Annotated[
    SecretStr,
    Field(
        min_length=1,
        max_length=4096,
        description=CREDENTIAL_HELP,
        json_schema_extra={"pattern": CREDENTIAL_PATTERN},
    ),
    AfterValidator(_credential),
]
JsmId = Annotated[str, Field(pattern=r"^\d{1,18}$", description="numeric JSM id, as a string")]
Language = Annotated[str, Field(pattern=r"^[a-z]{2}$", description="ISO 639-1 code, e.g. 'en'")]
JiraAuth = Literal["basic", "oauth2"]
RecordingRetention = Literal["keep", "delete_after_ticket"] | Annotated[int, Field(ge=1, le=3650)]
RECORDING_RETENTION_HELP = (
    "keep (default): Twilio keeps the recording; delete_after_ticket: deleted at Twilio once the "
    "request (and its attachment) is written; a number N: deleted N days after the request"
)
Vocabulary = Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]], Field(max_length=200)]
VOCABULARY_HELP = (
    "product names and terms callers use, in order of importance; speech-to-text gets as many as "
    "fit its prompt (about 600 characters)"
)
ConcurrencyLimit = Annotated[int, Field(ge=1, le=1000)] | None
PROVIDER_CONCURRENCY_HELP = (
    "the most calls at once to each provider for this tenant, per replica of the service that calls "
    "it (N replicas allow N times as many); null: unlimited. PATCH replaces the whole object, null "
    "restores the defaults"
)
TRANSCRIPTION_BACKEND_HELP = (
    "speech-to-text: openai (speech_to_text_base_url with speech_to_text_api_key, by default "
    "openai_base_url with openai_api_key: OpenAI or an OpenAI-compatible server) or local (the "
    "transcriber's own Whisper engine; the audio never leaves it); null: openai when the tenant "
    "has a speech-to-text key (its own or the OpenAI one), local when it has none"
)
SPEECH_TO_TEXT_BASE_URL_HELP = (
    "speech-to-text's own OpenAI-compatible server (a self-hosted Whisper server, say), with "
    "speech_to_text_api_key; null: openai_base_url (with openai_api_key). Its host is allowed for "
    "the tenant's speech-to-text requests (docs/security-privacy.md, egress)"
)
LLM_BASE_URL_HELP = (
    "the language model's own OpenAI-compatible server (a vLLM, say), with llm_api_key; null: "
    "openai_base_url (with openai_api_key). Its host is allowed for the tenant's LLM requests"
)
OAUTH_GATEWAY_PATH = re.compile(r"^/ex/jira/[0-9A-Za-z-]+$")


def jira_url_problem(auth: str, base_url: str) -> str | None:
    """With OAuth 2.0, Jira is reached through Atlassian's gateway, not the site URL."""
    if auth == "oauth2" and not OAUTH_GATEWAY_PATH.match(urlsplit(base_url).path):
        return "with jira_auth 'oauth2', jira_base_url must be https://api.atlassian.com/ex/jira/<cloudId>"
    return None


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# The tenant credentials, in db.SECRET_FIELDS order (checked below). Spelled out rather than built
# with StrEnum("CredentialName", ...) so type checkers know the members; no docstring, which would
# become the OpenAPI schema's description.
class CredentialName(StrEnum):
    jira_api_token = auto()  # StrEnum: the value is the member name
    twilio_auth_token = auto()
    openai_api_key = auto()
    jira_oauth_token = auto()
    speech_to_text_api_key = auto()
    llm_api_key = auto()
    jira_webhook_secret = auto()


if tuple(CredentialName) != db.SECRET_FIELDS:
    raise RuntimeError("CredentialName must list exactly db.SECRET_FIELDS, in order")


class RedactionPattern(BaseModel):
    # Not stripped: the pattern is a regular expression, its spaces are part of it.
    model_config = ConfigDict(extra="forbid", strict=True)

    kind: Annotated[str, Field(pattern=r"^[a-z][a-z_]{0,47}$", description="shown as [redacted: <kind>]")]
    pattern: Annotated[str, Field(min_length=1, max_length=1000, description="Python regular expression")]


class RedactionSettings(BaseModel):
    """What is redacted from transcripts and the model's texts before they leave for the language
    model or Jira. Checked with the engine's own rules (voiceticket_common.redaction): a pattern it
    refuses (invalid, can match empty text, nested repetition, a built-in kind's name) is a 422."""

    # Strict: "yes" is not true here, the engine would refuse it too.
    model_config = ConfigDict(extra="forbid", strict=True)

    payment_cards: bool = True
    card_details: bool = Field(True, description="security codes and expiry dates near a card or keyword")
    ibans: bool = True
    national_ids: bool = Field(True, description="US SSN, UK NINO, German Steuer-ID and ID card, French NIR")
    emails: bool = False
    phone_numbers: bool = False
    custom_patterns: Annotated[list[RedactionPattern], Field(max_length=64)] = Field(default_factory=list)
    context_window: Annotated[int, Field(ge=10, le=500)] = Field(
        80, description="characters after a card or keyword (half of it before) searched for codes and dates"
    )

    @model_validator(mode="after")
    def _the_engine_accepts_it(self) -> RedactionSettings:
        try:
            RedactionPolicy.from_mapping(self.stored())
        except RedactionConfigError as exc:
            raise ValueError(str(exc)) from None
        return self

    def stored(self) -> dict[str, Any]:
        """The settings as stored and served (only what was set: defaults follow the engine)."""
        return self.model_dump(exclude_unset=True)


class IvrOptionIn(_In):
    """One option of a line's IVR menu."""

    digit: Annotated[str, Field(pattern=r"^[0-9*#]$", description="the key that chooses it: 0-9, * or #")]
    label: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")] = Field(
        description="what the option is called: said in the built-in prompt, recorded on the call's "
        "events, and a spoken choice too"
    )
    phrases: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f,]+$")]],
        Field(max_length=20),
    ] = Field(
        default_factory=list,
        description="words or phrases a caller may say to choose it (also the speech hints); no commas",
    )
    request_type_id: JsmId | None = Field(
        None,
        description="the request type of the call's request, whatever the analysis says; null: the analysis decides",
    )
    language: Language | None = Field(
        None,
        description="the call's language from this choice on (prompts, speech-to-text, the request); null: the line's",
    )


class IvrMenuIn(_In):
    """A line's IVR menu before the recording: one key or spoken choice (<Gather input="dtmf speech">)."""

    prompt: Annotated[str, Field(min_length=1, max_length=2000)] | None = Field(
        None,
        description="what the caller hears; null: a built-in prompt in the line's language naming each option",
    )
    options: Annotated[list[IvrOptionIn], Field(min_length=1, max_length=12)]
    timeout_seconds: Annotated[int, Field(ge=1, le=30)] = Field(
        DEFAULT_MENU_TIMEOUT_SECONDS, description="seconds to wait for a key or speech (<Gather timeout>)"
    )
    attempts: Annotated[int, Field(ge=1, le=3)] = Field(
        DEFAULT_MENU_ATTEMPTS,
        description="prompts in all: after no input or an invalid one the menu is offered again, after "
        "the last the call goes on without a choice",
    )

    @model_validator(mode="after")
    def _unambiguous(self) -> IvrMenuIn:
        digits = [o.digit for o in self.options]
        if len(set(digits)) != len(digits):
            raise ValueError("each option needs a digit of its own")
        said: dict[str, str] = {}
        for option in self.options:
            for words in {normalized_words(w) for w in (option.label, *option.phrases)}:
                if said.setdefault(words, option.digit) != option.digit:
                    raise ValueError(f"options {said[words]} and {option.digit} share the words {words!r}")
        return self


class ProviderConcurrency(BaseModel):
    """Per-tenant flow control toward the providers, so a burst of calls cannot hammer the
    customer's Jira or their OpenAI quota (``voiceticket_common.provider_limits``)."""

    # Strict: "4" is not a limit; extra="forbid": a misspelt provider is a 422, not ignored.
    model_config = ConfigDict(extra="forbid", strict=True)

    speech_to_text: ConcurrencyLimit = Field(
        runtime_views.DEFAULT_PROVIDER_CONCURRENCY["speech_to_text"],
        description="transcriber's speech-to-text requests",
    )
    llm: ConcurrencyLimit = Field(
        runtime_views.DEFAULT_PROVIDER_CONCURRENCY["llm"], description="analyzer's language-model requests"
    )
    jira: ConcurrencyLimit = Field(
        runtime_views.DEFAULT_PROVIDER_CONCURRENCY["jira"],
        description="jira-writer's requests to the tenant's Jira (each one, not each call's request)",
    )
    sms: ConcurrencyLimit = Field(
        runtime_views.DEFAULT_PROVIDER_CONCURRENCY["sms"], description="notifier's SMS sends at Twilio"
    )

    def stored(self) -> dict[str, Any]:
        """What is stored: only what was set (the defaults follow voiceticket_common)."""
        return self.model_dump(exclude_unset=True)

    def limits(self) -> dict[str, int | None]:
        """Every provider's effective limit, defaults filled in (what the services are served)."""
        return self.model_dump()


class TenantCreate(_In):
    id: TenantId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    jira_base_url: HttpUrlStr
    jira_email: Email | None = None
    jira_api_token: Secret | None = None
    jira_auth: JiraAuth = Field(
        "basic", description="basic: jira_email + jira_api_token; oauth2: jira_oauth_token"
    )
    jira_oauth_token: Secret | None = None
    twilio_account_sid: AccountSid | None = None
    twilio_auth_token: Secret | None = None
    openai_base_url: HttpUrlStr = runtime_views.DEFAULT_OPENAI_BASE_URL
    openai_api_key: Secret | None = None
    speech_to_text_base_url: HttpUrlStr | None = Field(None, description=SPEECH_TO_TEXT_BASE_URL_HELP)
    speech_to_text_api_key: Secret | None = None
    llm_base_url: HttpUrlStr | None = Field(None, description=LLM_BASE_URL_HELP)
    llm_api_key: Secret | None = None
    jira_webhook_secret: Secret | None = Field(
        None,
        description="the secret of the tenant's Jira admin webhook (status texts): Jira signs each "
        "delivery with it (X-Hub-Signature: sha256=<HMAC-SHA256 of the body>); null: Jira webhooks "
        "are refused",
    )
    transcription_model: ModelName = runtime_views.DEFAULT_TRANSCRIPTION_MODEL
    vocabulary: Vocabulary = Field(default_factory=list, description=VOCABULARY_HELP)
    analysis_model: ModelName = runtime_views.DEFAULT_ANALYSIS_MODEL
    redaction: RedactionSettings | None = Field(None, description="null: the default redaction policy")
    recording_retention: RecordingRetention = Field("keep", description=RECORDING_RETENTION_HELP)
    provider_concurrency: ProviderConcurrency | None = Field(
        None, description="null: the defaults; " + PROVIDER_CONCURRENCY_HELP
    )
    transcription_backend: runtime_views.TranscriptionBackend | None = Field(
        None, description=TRANSCRIPTION_BACKEND_HELP
    )

    @model_validator(mode="after")
    def _oauth_through_the_gateway(self) -> TenantCreate:
        problem = jira_url_problem(self.jira_auth, self.jira_base_url)
        if problem:
            raise ValueError(problem)
        return self


class TenantPatch(_In):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    jira_base_url: HttpUrlStr | None = None
    jira_email: Email | None = None
    jira_auth: JiraAuth | None = None
    twilio_account_sid: AccountSid | None = None
    openai_base_url: HttpUrlStr | None = None
    speech_to_text_base_url: HttpUrlStr | None = Field(None, description=SPEECH_TO_TEXT_BASE_URL_HELP)
    llm_base_url: HttpUrlStr | None = Field(None, description=LLM_BASE_URL_HELP)
    transcription_model: ModelName | None = None
    vocabulary: Vocabulary | None = Field(None, description=VOCABULARY_HELP)
    analysis_model: ModelName | None = None
    redaction: RedactionSettings | None = Field(
        None, description="replaces the whole redaction settings; null: back to the default policy"
    )
    recording_retention: RecordingRetention | None = Field(None, description=RECORDING_RETENTION_HELP)
    provider_concurrency: ProviderConcurrency | None = Field(None, description=PROVIDER_CONCURRENCY_HELP)
    transcription_backend: runtime_views.TranscriptionBackend | None = Field(
        None, description=TRANSCRIPTION_BACKEND_HELP
    )

    @field_serializer("recording_retention")
    def _retention_stored(self, value: str | int | None) -> str | None:
        return None if value is None else str(value)  # stored as text: days as digits

    @model_validator(mode="before")
    @classmethod
    def _no_secrets_no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            secrets = sorted(set(data) & set(db.SECRET_FIELDS))
            if secrets:
                raise ValueError(
                    f"credentials {secrets} cannot be changed with PATCH; "
                    "use PUT /v1/tenants/{id}/credentials/{name}"
                )
            nullable = {
                "jira_email",
                "twilio_account_sid",
                "redaction",
                "provider_concurrency",
                "transcription_backend",
                "speech_to_text_base_url",
                "llm_base_url",
            }
            nulls = sorted(k for k, v in data.items() if v is None and k not in nullable)
            if nulls:
                raise ValueError(f"fields {nulls} cannot be null")
        return data


class CredentialIn(_In):
    value: Secret


def mask(plaintext: str | None) -> str | None:
    """'••••abcd' (last 4) for secrets of 12+ chars; shorter ones show nothing."""
    if plaintext is None:
        return None
    return "••••" + (plaintext[-4:] if len(plaintext) >= 12 else "")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    @field_validator("created_at", "updated_at", check_fields=False)
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v  # SQLite drops the tz


class TenantOut(_Out):
    id: str
    name: str
    jira_base_url: str
    jira_email: str | None
    jira_api_token: str | None = Field(description="masked")
    jira_auth: str
    jira_oauth_token: str | None = Field(description="masked")
    twilio_account_sid: str | None
    twilio_auth_token: str | None = Field(description="masked")
    openai_base_url: str
    openai_api_key: str | None = Field(description="masked")
    speech_to_text_base_url: str | None = Field(None, description=SPEECH_TO_TEXT_BASE_URL_HELP)
    speech_to_text_api_key: str | None = Field(None, description="masked")
    llm_base_url: str | None = Field(None, description=LLM_BASE_URL_HELP)
    llm_api_key: str | None = Field(None, description="masked")
    jira_webhook_secret: str | None = Field(None, description="masked")
    transcription_model: str
    vocabulary: list[str]
    analysis_model: str
    redaction: RedactionSettings = Field(description="the tenant's redaction policy, defaults filled in")
    recording_retention: str | int = Field("keep", description=RECORDING_RETENTION_HELP)
    provider_concurrency: ProviderConcurrency = Field(
        description="the tenant's limits, defaults filled in; " + PROVIDER_CONCURRENCY_HELP
    )
    transcription_backend: str | None = Field(None, description=TRANSCRIPTION_BACKEND_HELP)
    created_at: datetime
    updated_at: datetime


class LineIn(_In):
    number: E164 | None = Field(None, description="optional in PUT; must equal the path")
    tenant_id: TenantId
    service_desk_id: JsmId
    request_type_id: JsmId = Field(description="default request type")
    request_types: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")], JsmId] = Field(
        default_factory=dict, description="intent name -> request type id"
    )
    language_mode: Literal["auto", "enforced"] = "auto"
    language: Language = "en"
    greeting: Annotated[str, Field(max_length=2000)] = runtime_views.DEFAULT_GREETING
    recording_notice: Annotated[str, Field(min_length=1, max_length=2000)] = db.DEFAULT_RECORDING_NOTICE
    voice: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")] = runtime_views.DEFAULT_VOICE
    max_recording_seconds: Annotated[int, Field(ge=5, le=3600)] = runtime_views.DEFAULT_MAX_RECORDING_SECONDS
    record_timeout_seconds: Annotated[int, Field(ge=1, le=60)] = Field(
        runtime_views.DEFAULT_RECORD_TIMEOUT_SECONDS,
        description="seconds of silence that end the recording (<Record timeout>)",
    )
    record_finish_on_key: Annotated[str, Field(pattern=r"^[0-9*#]{1,12}$")] = Field(
        runtime_views.DEFAULT_FINISH_ON_KEY,
        description="keys that end the recording (<Record finishOnKey>), e.g. '#' or '*#'",
    )
    sms_enabled: bool = True
    sms_from: E164 | None = Field(None, description="null: send from the line's own number")
    sms_messaging_service_sid: Annotated[str, Field(pattern=r"^MG[0-9a-fA-F]{32}$")] | None = Field(
        None, description="Twilio Messaging Service to send from; when set it wins over sms_from"
    )
    sms_template: Annotated[str, Field(min_length=1, max_length=1000), AfterValidator(_sms_template)] = (
        runtime_views.DEFAULT_SMS_TEMPLATE
    )
    phone_field_id: Annotated[str, Field(pattern=r"^customfield_\d{1,10}$")] | None = Field(
        None, description="null: the caller's number goes only to the issue property"
    )
    attach_recording: bool = False
    ticket_on_absent_recording: bool = Field(
        False, description="make a request for calls without a message (absent or failed recording)"
    )
    consent_mode: runtime_views.ConsentMode = Field(
        "notice",
        description="notice: the greeting and recording_notice are said, then the message is recorded; "
        "press_key: after the notice the caller is asked to press consent_key (<Gather numDigits=1>), "
        "and nothing is recorded unless they do",
    )
    consent_key: Annotated[str, Field(pattern=r"^[0-9*#]$")] = Field(
        runtime_views.DEFAULT_CONSENT_KEY,
        description="press_key: the one key (0-9, * or #) that consents to recording",
    )
    consent_prompt: Annotated[str, Field(min_length=1, max_length=1000)] | None = Field(
        None,
        description="press_key: said after the notice, in the line's language and voice; "
        "null: a built-in prompt in the line's language naming consent_key",
    )
    consent_timeout_seconds: Annotated[int, Field(ge=1, le=30)] = Field(
        runtime_views.DEFAULT_CONSENT_TIMEOUT_SECONDS,
        description="press_key: seconds to wait for a key (<Gather timeout>)",
    )
    consent_repeat: bool = Field(
        True,
        description="press_key: after no key or another key, ask once more before the call counts "
        "as declined",
    )
    on_consent_declined: runtime_views.ConsentDeclinedAction = Field(
        "none",
        description="press_key: what a declined call becomes: none, or ticket (one request saying the "
        "caller declined recording, with no recording or transcript)",
    )
    screening_action: runtime_views.ScreeningAction = Field(
        runtime_views.DEFAULT_SCREENING_ACTION,
        description="what a screened call becomes (silence, tone or too short a message, measured on "
        "the recording): request (a request as any other; the reason is shown on the calls page and "
        "counted), screened_request (a request in screened_request_type_id, and no SMS), no_request "
        "(none: the call ends as screened, on the calls page and in metrics)",
    )
    screened_request_type_id: JsmId | None = Field(
        None, description="screened_request: the request type of screened calls; null: the default one"
    )
    min_message_seconds: Annotated[float, Field(ge=0, le=30)] = Field(
        runtime_views.DEFAULT_MIN_MESSAGE_SECONDS,
        description="seconds of voice (sound that is not tones) below which a recording is screened as "
        "too_short; 0: no minimum (silence and tones are still screened)",
    )
    screen_robocalls: bool = Field(
        False,
        description="screen calls a spam-score add-on installed for incoming calls flags (Nomorobo Spam "
        "Score 1, Marchex Clean Call BLOCK: Twilio's AddOns parameter) as robocall; with no_request "
        "the call is rejected unanswered",
    )
    ivr_menu: IvrMenuIn | None = Field(
        None,
        description="an IVR menu said after the greeting, before the recording notice: options chosen "
        "by key or by voice, each with a request type and a language that override the analysis'; "
        "null: no menu",
    )
    repeat_callers: runtime_views.RepeatCallers = Field(
        runtime_views.DEFAULT_REPEAT_CALLERS,
        description="off (every call a new request) or comment: a caller who calls again about the "
        "same matter while their earlier request (within repeat_window_hours) is still open gets "
        "the call added to it as an internal comment instead of a new request, and an SMS saying so",
    )
    repeat_window_hours: Annotated[int, Field(ge=1, le=runtime_views.MAX_REPEAT_WINDOW_HOURS)] = Field(
        runtime_views.DEFAULT_REPEAT_WINDOW_HOURS,
        description="comment: how many hours after a request was created a new call of the same "
        "caller may be added to it",
    )
    repeat_matcher: runtime_views.RepeatMatcher = Field(
        runtime_views.DEFAULT_REPEAT_MATCHER,
        description="comment: how jira-writer decides the new call is about the same matter as an "
        "open request: embedding (all-MiniLM-L6-v2 sentence similarity, run locally) or lexical "
        "(the words the open request's summary shares with the call)",
    )
    sms_replies: bool = Field(
        False,
        description="the caller's text replies to our SMS become comments on the request we last "
        "texted them about, while Jira says it is open (otherwise a polite answer); false: replies "
        "are not read. STOP/START/HELP are handled either way",
    )
    sms_help_text: Annotated[str, Field(min_length=1, max_length=480)] | None = Field(
        None, description="the answer to HELP or INFO; null: a built-in text"
    )
    status_texts: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=255)]], Field(max_length=20)
    ] = Field(
        default_factory=list,
        description="statuses whose arrival texts the caller (at most one text per transition, "
        "driven by the tenant's Jira webhook): status names, any case, or resolved (any status of "
        "category done); []: no status texts",
    )


class LineOut(_Out):
    number: str
    tenant_id: str
    service_desk_id: str
    request_type_id: str
    request_types: dict[str, str]
    language_mode: str
    language: str
    greeting: str
    recording_notice: str
    voice: str
    max_recording_seconds: int
    record_timeout_seconds: int
    record_finish_on_key: str
    sms_enabled: bool
    sms_from: str | None
    sms_messaging_service_sid: str | None
    sms_template: str
    phone_field_id: str | None
    attach_recording: bool
    ticket_on_absent_recording: bool
    consent_mode: str
    consent_key: str
    consent_prompt: str | None
    consent_timeout_seconds: int
    consent_repeat: bool
    on_consent_declined: str
    screening_action: str
    screened_request_type_id: str | None
    min_message_seconds: float
    screen_robocalls: bool
    ivr_menu: IvrMenuIn | None
    repeat_callers: str
    repeat_window_hours: int
    repeat_matcher: str = runtime_views.DEFAULT_REPEAT_MATCHER
    sms_replies: bool = False
    sms_help_text: str | None = None
    status_texts: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class SeedLine(LineIn):
    number: E164


class SeedFile(_In):
    tenants: list[TenantCreate] = Field(default_factory=list)
    lines: list[SeedLine] = Field(default_factory=list)


class ErrorOut(BaseModel):
    """Every error but request validation (422): a human-readable message."""

    detail: str = Field(examples=["unknown tenant"])


class StatusOut(BaseModel):
    status: str


class RuntimeLineOut(BaseModel):
    tenant_id: str
    line: dict[str, Any] = Field(description="exactly the line fields of the caller's view")
    tenant: dict[str, Any] = Field(description="exactly the tenant fields of the caller's view")


class RotateResult(BaseModel):
    primary_kid: str
    reencrypted: int


class AuditEventOut(_Out):
    """One audit entry. Never a credential (not even masked) nor a phone number: lines are
    ``line:<ref>`` (the reference of their number), details hold names, flags and counts."""

    id: int
    at: datetime
    actor: str = Field(description="the admin token's name, a service role, or 'anonymous'")
    action: str = Field(examples=["tenant.create"])
    target: str | None = Field(description="tenant:<id>, line:<ref> or master-key", examples=["tenant:acme"])
    tenant_id: str | None
    outcome: Literal["success", "refused", "error"]
    status_code: int
    request_id: str | None = Field(description="the request's X-Request-Id, when it sent one")
    trace_id: str | None
    details: dict[str, Any]

    @field_validator("at")
    @classmethod
    def _at_utc(cls, v: datetime) -> datetime:
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v  # SQLite drops the tz


class AuditPage(BaseModel):
    items: list[AuditEventOut] = Field(description="newest first")
    next_before: int | None = Field(
        description="pass as `before` for the next (older) page; null on the last page"
    )
