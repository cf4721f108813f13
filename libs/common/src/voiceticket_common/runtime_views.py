"""What each service may know about a support line and its tenant: one model per service's view.

config-api serves ``GET /v1/runtime/lines/{number}`` as ``{"tenant_id", "line": {...}, "tenant":
{...}}`` with exactly the fields of the calling role's view (least privilege), and derives that list
from these models; the services parse the answer into their view and read typed attributes.

Views parse tolerantly: unknown fields are ignored (a newer config-api may send more), and a null
or blank value means the field's default, as the services' ``value or default`` reads did before.
The defaults are the services' behaviour when config-api sends nothing; config-api stores the same
OpenAI and voice defaults from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, SecretStr, model_validator

from .bus.errors import PermanentError
from .ivr import IvrMenu
from .provider_limits import Provider
from .twilio import TwilioAccount

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TRANSCRIPTION_MODEL = "gpt-4o-mini-transcribe"
DEFAULT_ANALYSIS_MODEL = "gpt-4o-mini"
DEFAULT_GREETING = "Thank you for calling support."
DEFAULT_VOICE = "Polly.Joanna"
DEFAULT_MAX_RECORDING_SECONDS = 120
DEFAULT_RECORD_TIMEOUT_SECONDS = 5
DEFAULT_FINISH_ON_KEY = "#"
DEFAULT_SMS_TEMPLATE = "Thanks for calling. Your support request {request_key} has been created."
DEFAULT_SMS_HELP_TEXT = (
    "This number answers support calls. Reply to add a message to your open request; "
    "reply STOP to stop texts, START to resume."
)
"""A line's ``sms_help_text`` when it sets none (GSM-7, one segment and a bit)."""
STATUS_TEXTS_RESOLVED = "resolved"
"""In a line's ``status_texts``: any status of Jira's category done."""
DEFAULT_STATUS_TEXT = "Your support request {request_key} is now: {status}."
DEFAULT_RECORDING_NOTICE = (
    "This call is recorded and transcribed to create a support ticket. "
    "Please leave your message after the tone and hang up when you are done."
)
ConsentMode = Literal["notice", "press_key"]
"""``notice``: the notice is said and the message recorded; ``press_key``: only after the caller
pressed ``consent_key``. (Views read it as ``str``, tolerant of a newer config-api's modes.)"""
DEFAULT_CONSENT_MODE = "notice"
DEFAULT_CONSENT_KEY = "1"
DEFAULT_CONSENT_TIMEOUT_SECONDS = 6
RECORDING_RETENTION_KEEP = "keep"
RECORDING_RETENTION_AFTER_TICKET = "delete_after_ticket"
"""A tenant's ``recording_retention``: ``keep`` (the default: Twilio keeps the recording), ``delete_after_ticket``
(jira-writer deletes it once the request, and its attachment, are written) or a number of days
(jira-writer's scheduled purge deletes it that long after the request was written)."""
ConsentDeclinedAction = Literal["none", "ticket"]
"""What a declined consent becomes: nothing, or a request saying the caller declined recording."""
ScreeningAction = Literal["request", "screened_request", "no_request"]
"""What a line does with a screened call (``call.*.screened``): ``request`` a request as any other
(the default, as before screening existed: the reason is only shown and counted),
``screened_request`` a request in the line's ``screened_request_type_id`` and no SMS, ``no_request``
none (``call.screened`` ends the call; ingress rejects a screened caller without answering)."""
SCREENING_REQUEST = "request"
SCREENING_SCREENED_REQUEST = "screened_request"
SCREENING_NO_REQUEST = "no_request"
DEFAULT_SCREENING_ACTION: ScreeningAction = "request"
DEFAULT_MIN_MESSAGE_SECONDS = 1.0
RepeatCallers = Literal["off", "comment"]
"""What a line does with a caller who calls again while an earlier request of theirs is open:
``off`` (the default, as before) a new request each call; ``comment`` the call goes onto the open
request about the same matter as an internal comment (jira-writer's matcher decides), and the SMS
says so."""
REPEAT_CALLERS_OFF = "off"
REPEAT_CALLERS_COMMENT = "comment"
DEFAULT_REPEAT_CALLERS: RepeatCallers = "off"
DEFAULT_REPEAT_WINDOW_HOURS = 72
MAX_REPEAT_WINDOW_HOURS = 720
"""30 days: jira-writer keeps its caller index no longer than its ledger rows."""
RepeatMatcher = Literal["embedding", "lexical"]
"""How jira-writer decides that a repeat call is about the same matter as an open request:
``embedding`` (the default) the cosine similarity of all-MiniLM-L6-v2 sentence embeddings, run
locally; ``lexical`` the shared content words (bench/results/repeat-matcher-*.md measures both)."""
REPEAT_MATCHER_EMBEDDING = "embedding"
REPEAT_MATCHER_LEXICAL = "lexical"
DEFAULT_REPEAT_MATCHER: RepeatMatcher = "embedding"
"""Seconds of voice (sound that is not tones) below which a recording is screened ``too_short``."""
TranscriptionBackend = Literal["openai", "local"]
"""A tenant's ``transcription_backend``: ``openai`` (the tenant's OpenAI or OpenAI-compatible
server) or ``local`` (the transcriber's own Whisper engine, audio never leaves it). Unset: ``openai``
for a tenant with an OpenAI key, ``local`` for one without (``TranscriberView.transcription_backend``)."""
TRANSCRIPTION_OPENAI = "openai"
TRANSCRIPTION_LOCAL = "local"
DEFAULT_PROVIDER_CONCURRENCY: Mapping[Provider, int] = {"speech_to_text": 8, "llm": 8, "jira": 4, "sms": 4}
"""A tenant's ``provider_concurrency`` when it sets none: the most calls at once to each provider,
per replica (``provider_limits``). Jira and Twilio's SMS get fewer than OpenAI: a JSM site and a
Twilio account are shared with everything else the customer runs, and each call makes 3-4 Jira
requests but one SMS; 8 at OpenAI covers a burst without a typical tier's rate limit."""


class _Section(BaseModel):
    """A ``line`` or ``tenant`` object of a view."""

    # JSM ids are strings; a number in a hand-written config still means the same id.
    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)

    @model_validator(mode="before")
    @classmethod
    def _unset_means_default(cls, data: object) -> object:
        # config-api sends null for unset nullable columns; null and blank both mean the default.
        if isinstance(data, Mapping):
            return {key: value for key, value in data.items() if value is not None and value != ""}
        return data


# --- lines ---------------------------------------------------------------------------------------


class _Line(_Section):
    number: str
    language: str | None = None
    """ISO 639-1 code of the line's language."""


class _LanguageModeLine(_Line):
    language_mode: str = "auto"

    @property
    def enforced_language(self) -> str | None:
        """The line's language when the line enforces it; None lets the models detect it."""
        return self.language if self.language_mode == "enforced" else None


class _ScreeningLine(_Line):
    screening_action: str = DEFAULT_SCREENING_ACTION
    """What a screened call becomes (:data:`ScreeningAction`)."""

    @property
    def screens_out(self) -> bool:
        """A screened call is set apart (its own request type, or none) rather than treated as any other."""
        return self.screening_action != SCREENING_REQUEST


class IngressLine(_ScreeningLine):
    greeting: str = DEFAULT_GREETING
    recording_notice: str = DEFAULT_RECORDING_NOTICE
    """Said after the greeting, always before ``<Record>`` (unset or blank: the default notice)."""
    voice: str = DEFAULT_VOICE
    max_recording_seconds: int = DEFAULT_MAX_RECORDING_SECONDS
    record_timeout_seconds: int = DEFAULT_RECORD_TIMEOUT_SECONDS
    """Seconds of silence that end the recording."""
    record_finish_on_key: str = DEFAULT_FINISH_ON_KEY
    """Keys that end the recording."""
    consent_mode: str = DEFAULT_CONSENT_MODE
    """``notice`` or ``press_key`` (see :data:`ConsentMode`)."""
    consent_key: str = DEFAULT_CONSENT_KEY
    """With ``press_key``: the one key (0-9, * or #) that consents to the recording."""
    consent_prompt: str | None = None
    """With ``press_key``: said after the notice; None: a built-in prompt in the line's language."""
    consent_timeout_seconds: int = DEFAULT_CONSENT_TIMEOUT_SECONDS
    """With ``press_key``: seconds to wait for the key (``<Gather timeout>``)."""
    consent_repeat: bool = True
    """With ``press_key``: after no input or another key, ask once more before it counts as declined."""
    screen_robocalls: bool = False
    """Screen the calls a spam-score add-on flags (``robocall``; Twilio's ``AddOns``)."""
    ivr_menu: IvrMenu | None = None
    """The menu before the recording notice (``voiceticket_common.ivr``); None: no menu."""


class TranscriberLine(_LanguageModeLine, _ScreeningLine):
    min_message_seconds: float = DEFAULT_MIN_MESSAGE_SECONDS
    """Less voice than this screens the recording as ``too_short``; 0: no minimum."""


class AnalyzerLine(_LanguageModeLine):
    request_types: dict[str, str] = Field(default_factory=dict)
    """intent -> JSM request type id; its keys are the intents the model may choose from."""
    request_type_id: str | None = None
    """The line's default request type: a degraded analysis names its intent."""


class JiraWriterLine(_ScreeningLine):
    service_desk_id: str
    request_type_id: str
    """The default request type, for intents ``request_types`` does not map."""
    request_types: dict[str, str] = Field(default_factory=dict)
    phone_field_id: str | None = None
    """The custom field for the caller's number; None: it goes only to the issue property."""
    attach_recording: bool = False
    ticket_on_absent_recording: bool = False
    on_consent_declined: str = "none"
    """``ticket``: a request saying the caller declined recording; ``none``: nothing."""
    screened_request_type_id: str | None = None
    """With ``screened_request``: the request type of screened calls (None: the line's default)."""
    repeat_callers: str = DEFAULT_REPEAT_CALLERS
    """``comment``: a caller's new call about the same matter as their open request becomes a
    comment on it (:data:`RepeatCallers`); ``off``: every call is a new request."""
    repeat_window_hours: int = DEFAULT_REPEAT_WINDOW_HOURS
    """How far back a caller's earlier requests are candidates (from when each was created)."""
    repeat_matcher: str = DEFAULT_REPEAT_MATCHER
    """``embedding`` or ``lexical`` (:data:`RepeatMatcher`): how "the same matter" is decided."""


class NotifierLine(_ScreeningLine):
    # Missing means off: an SMS goes out only when the line asks for it.
    sms_enabled: bool = False
    sms_from: str | None = None
    """None: the SMS is sent from the line's own number."""
    sms_messaging_service_sid: str | None = None
    """A Twilio Messaging Service; wins over ``sms_from``."""
    sms_template: str = DEFAULT_SMS_TEMPLATE
    sms_replies: bool = False
    """The caller's text replies become comments on the request we last texted them about (if it is
    still open); off: replies are not read (STOP/START/HELP are handled either way)."""
    sms_help_text: str = DEFAULT_SMS_HELP_TEXT
    """The answer to HELP/INFO (unless Twilio's Advanced Opt-Out answered it)."""
    status_texts: tuple[str, ...] = ()
    """Statuses whose arrival texts the caller: status names (any case) or ``resolved`` (any status
    of category done); empty: no status texts."""


# --- tenants -------------------------------------------------------------------------------------


class _Concurrency(BaseModel):
    """The tenant's ``provider_concurrency`` narrowed to the one provider a service calls: the most
    calls to it at once per replica; ``null`` (None): unlimited. Missing: the default."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class SpeechToTextConcurrency(_Concurrency):
    speech_to_text: PositiveInt | None = DEFAULT_PROVIDER_CONCURRENCY["speech_to_text"]


class LlmConcurrency(_Concurrency):
    llm: PositiveInt | None = DEFAULT_PROVIDER_CONCURRENCY["llm"]


class JiraConcurrency(_Concurrency):
    jira: PositiveInt | None = DEFAULT_PROVIDER_CONCURRENCY["jira"]


class SmsConcurrency(_Concurrency):
    sms: PositiveInt | None = DEFAULT_PROVIDER_CONCURRENCY["sms"]


class TwilioTenant(_Section):
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None


class IngressTenant(TwilioTenant):
    blocks_callers: bool = False
    """The tenant's block list has entries: only then does ingress ask config-api whether a caller
    is on it (computed by config-api, not stored; an older config-api sends nothing: no lookups)."""
    jira_webhook_secret: SecretStr | None = None
    """The secret of the tenant's Jira admin webhook (``X-Hub-Signature``, status texts); None:
    its Jira webhooks are refused."""


_Key = TypeVar("_Key", str, SecretStr)


def provider_settings(
    own_url: str | None, own_key: _Key | None, openai_url: str | None, openai_key: _Key | None
) -> tuple[str, _Key | None]:
    """One provider's (speech-to-text's, the LLM's) base URL and key: its own, else the tenant's
    OpenAI settings. The OpenAI key goes only to the OpenAI base URL: a provider with a URL of
    its own and no key of its own gets no key (config-api and the views resolve alike)."""
    shared = (openai_url or DEFAULT_OPENAI_BASE_URL).rstrip("/")
    url = (own_url or shared).rstrip("/")
    if _present(own_key):
        return url, own_key
    return url, (openai_key if url == shared and _present(openai_key) else None)


def _present(key: str | SecretStr | None) -> bool:
    return bool(key.get_secret_value() if isinstance(key, SecretStr) else key)


class _ProviderTenant(_Section):
    """A tenant's one OpenAI-compatible provider, as config-api resolves it (``provider_settings``).

    An older config-api, or a hand-written config, sends ``openai_base_url`` and ``openai_api_key``
    instead: they stand for the provider, by the same rule."""

    provider: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _from_openai_settings(cls, data: object) -> object:
        if not isinstance(data, Mapping):
            return data
        rest = {k: v for k, v in data.items() if k not in ("openai_base_url", "openai_api_key")}
        url_field, key_field = f"{cls.provider}_base_url", f"{cls.provider}_api_key"
        url, key = provider_settings(
            data.get(url_field), data.get(key_field), data.get("openai_base_url"), data.get("openai_api_key")
        )
        return rest | {url_field: url, key_field: key}


class SpeechToTextTenant(_ProviderTenant):
    provider: ClassVar[str] = "speech_to_text"
    speech_to_text_base_url: str = DEFAULT_OPENAI_BASE_URL
    speech_to_text_api_key: SecretStr | None = None


class LlmTenant(_ProviderTenant):
    provider: ClassVar[str] = "llm"
    llm_base_url: str = DEFAULT_OPENAI_BASE_URL
    llm_api_key: SecretStr | None = None


class RedactionTenant(_Section):
    redaction: dict[str, Any] | None = None
    """The tenant's redaction settings (``voiceticket_common.redaction.RedactionPolicy.from_mapping``;
    compiled once per distinct settings by ``redaction.tenant_redactor``); None: the default policy."""


class TranscriberTenant(TwilioTenant, SpeechToTextTenant, RedactionTenant):
    transcription_model: str = DEFAULT_TRANSCRIPTION_MODEL
    vocabulary: tuple[str, ...] = ()
    """Product names and terms, sent to speech-to-text so it spells them right."""
    provider_concurrency: SpeechToTextConcurrency = SpeechToTextConcurrency()
    transcription_backend: str | None = None
    """``openai``, ``local`` or None (see :data:`TranscriptionBackend`)."""


class AnalyzerTenant(LlmTenant, RedactionTenant):
    analysis_model: str = DEFAULT_ANALYSIS_MODEL
    provider_concurrency: LlmConcurrency = LlmConcurrency()


def recording_retention_days(value: str) -> int | None:
    """The days of a ``recording_retention`` of N days; None for ``keep`` and ``delete_after_ticket``."""
    return int(value) if value.isdigit() and int(value) > 0 else None


def deletes_recordings(value: str) -> bool:
    """Whether a ``recording_retention`` has jira-writer delete recordings at Twilio."""
    return value == RECORDING_RETENTION_AFTER_TICKET or recording_retention_days(value) is not None


class JiraWriterTenant(TwilioTenant):
    recording_retention: str = RECORDING_RETENTION_KEEP
    """``keep``, ``delete_after_ticket`` or a number of days (see :data:`RECORDING_RETENTION_AFTER_TICKET`)."""
    jira_base_url: str = ""
    jira_auth: str = "basic"
    """``basic``: jira_email + jira_api_token; ``oauth2``: jira_oauth_token."""
    jira_email: str = ""
    jira_api_token: SecretStr | None = None
    jira_oauth_token: SecretStr | None = None
    provider_concurrency: JiraConcurrency = JiraConcurrency()


class NotifierTenant(TwilioTenant):
    provider_concurrency: SmsConcurrency = SmsConcurrency()


# --- views ---------------------------------------------------------------------------------------


def _required(tenant_id: str, value: SecretStr | None, name: str) -> SecretStr:
    if value is None or not value.get_secret_value():
        raise PermanentError(f"tenant {tenant_id} has no {name} configured")
    return value


class RuntimeView(BaseModel):
    """One service's view of a line: subclasses narrow ``line`` and ``tenant`` to their sections."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    role: ClassVar[str]
    """The config-api role (service token) this view is served to."""
    line_gated: ClassVar[Mapping[str, str]] = {}
    """Tenant field -> line flag: the field is served only for lines with the flag on."""

    tenant_id: str
    line: _Line
    tenant: _Section

    @classmethod
    def serves_gated(cls, field: str, line: object, tenant: object) -> bool:
        """Whether config-api serves tenant ``field`` for ``line`` of ``tenant`` (its rows): fields
        of ``line_gated`` only when the line's flag is on."""
        flag = cls.line_gated.get(field)
        return flag is None or bool(getattr(line, flag, False))

    @classmethod
    def line_fields(cls) -> tuple[str, ...]:
        return tuple(_section(cls, "line").model_fields)

    @classmethod
    def tenant_fields(cls) -> tuple[str, ...]:
        return tuple(_section(cls, "tenant").model_fields)

    @classmethod
    def tenant_subfields(cls) -> Mapping[str, tuple[str, ...]]:
        """Tenant field -> the keys of it this view may see (``provider_concurrency``: only the
        service's own provider's limit); fields not named here are served whole."""
        fields = _section(cls, "tenant").model_fields
        return {
            name: tuple(annotation.model_fields)
            for name, info in fields.items()
            if isinstance(annotation := info.annotation, type) and issubclass(annotation, _Concurrency)
        }


def _section(view: type[RuntimeView], name: str) -> type[BaseModel]:
    annotation = view.model_fields[name].annotation
    if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        raise TypeError(f"{view.__name__}.{name} must be a model")
    return annotation


class _ViewWithTwilio(Protocol):
    @property
    def tenant_id(self) -> str: ...

    @property
    def tenant(self) -> TwilioTenant: ...


class _TwilioAccess:
    def twilio_account(self: _ViewWithTwilio, account_sid: str = "") -> TwilioAccount:
        """The tenant's Twilio account; ``account_sid`` stands in when the tenant names none.

        Raises PermanentError when the tenant has no auth token (nothing can be signed or fetched).
        """
        sid = self.tenant.twilio_account_sid or account_sid
        return TwilioAccount(
            sid, _required(self.tenant_id, self.tenant.twilio_auth_token, "twilio_auth_token")
        )


class IngressView(_TwilioAccess, RuntimeView):
    """Answers calls with the line's texts and voice; checks Twilio's signatures."""

    role: ClassVar[str] = "ingress"
    line: IngressLine
    tenant: IngressTenant


class TranscriberView(_TwilioAccess, RuntimeView):
    """Downloads the recording from Twilio, transcribes it with the tenant's speech-to-text provider
    (``speech_to_text_base_url``; never the LLM's key)."""

    role: ClassVar[str] = "transcriber"
    line: TranscriberLine
    tenant: TranscriberTenant

    def transcription_backend(self) -> str:
        """The tenant's ``transcription_backend``; unset: ``openai`` with a speech-to-text key (its
        own or the OpenAI one), else ``local``."""
        if self.tenant.transcription_backend:
            return self.tenant.transcription_backend
        key = self.tenant.speech_to_text_api_key
        return TRANSCRIPTION_OPENAI if key is not None and key.get_secret_value() else TRANSCRIPTION_LOCAL

    def speech_to_text_api_key(self) -> SecretStr:
        """The speech-to-text provider's key; PermanentError when it has none (no retry brings one)."""
        return _required(self.tenant_id, self.tenant.speech_to_text_api_key, "speech_to_text_api_key")


class AnalyzerView(RuntimeView):
    """Analyses the transcript with the tenant's language model (``llm_base_url``); no Twilio, no
    Jira, never the speech-to-text key."""

    role: ClassVar[str] = "analyzer"
    line: AnalyzerLine
    tenant: AnalyzerTenant

    def llm_api_key(self) -> SecretStr:
        """The language model's key; PermanentError when it has none (no retry brings one)."""
        return _required(self.tenant_id, self.tenant.llm_api_key, "llm_api_key")


class JiraWriterView(RuntimeView):
    """Writes the request to the tenant's Jira; Twilio only to attach recordings (ADR 6) and to
    delete them per the tenant's ``recording_retention``."""

    role: ClassVar[str] = "jira-writer"
    line_gated: ClassVar[Mapping[str, str]] = {
        "twilio_account_sid": "attach_recording",
        "twilio_auth_token": "attach_recording",
    }
    line: JiraWriterLine
    tenant: JiraWriterTenant

    @classmethod
    def serves_gated(cls, field: str, line: object, tenant: object) -> bool:
        # The Twilio account also goes to lines of tenants whose recordings jira-writer deletes.
        if field in cls.line_gated and deletes_recordings(
            str(getattr(tenant, "recording_retention", None) or RECORDING_RETENTION_KEEP)
        ):
            return True
        return super().serves_gated(field, line, tenant)

    def deletes_recording_after_ticket(self) -> bool:
        return self.tenant.recording_retention == RECORDING_RETENTION_AFTER_TICKET

    def recording_retention_days(self) -> int | None:
        return recording_retention_days(self.tenant.recording_retention)

    def jira_api_token(self) -> SecretStr:
        return _required(self.tenant_id, self.tenant.jira_api_token, "jira_api_token")

    def jira_oauth_token(self) -> SecretStr:
        return _required(self.tenant_id, self.tenant.jira_oauth_token, "jira_oauth_token")

    def recording_account(self) -> TwilioAccount | None:
        """The account whose recordings jira-writer may download; None when it is not served."""
        sid, token = self.tenant.twilio_account_sid, self.tenant.twilio_auth_token
        if not sid or token is None or not token.get_secret_value():
            return None
        return TwilioAccount(sid, token)


class NotifierView(_TwilioAccess, RuntimeView):
    """Texts the caller the request key from the line's number with the tenant's Twilio."""

    role: ClassVar[str] = "notifier"
    line: NotifierLine
    tenant: NotifierTenant


VIEWS: Mapping[str, type[RuntimeView]] = {
    view.role: view for view in (IngressView, TranscriberView, AnalyzerView, JiraWriterView, NotifierView)
}
"""Role -> the view config-api serves to it."""
