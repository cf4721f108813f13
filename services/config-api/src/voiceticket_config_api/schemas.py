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
    field_validator,
    model_validator,
)

from voiceticket_common.runtime_views import (
    DEFAULT_ANALYSIS_MODEL,
    DEFAULT_FINISH_ON_KEY,
    DEFAULT_GREETING,
    DEFAULT_MAX_RECORDING_SECONDS,
    DEFAULT_OPENAI_BASE_URL,
    DEFAULT_RECORD_TIMEOUT_SECONDS,
    DEFAULT_SMS_TEMPLATE,
    DEFAULT_TRANSCRIPTION_MODEL,
    DEFAULT_VOICE,
)
from voiceticket_common.sms_template import check_template

from . import db

E164_RE = re.compile(r"^\+[1-9]\d{6,14}$")


def _e164(v: str) -> str:
    if not E164_RE.match(v):
        raise ValueError("must be an E.164 phone number like +14155550100")
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
HttpUrlStr = Annotated[str, Field(max_length=500), AfterValidator(_http_url)]
TenantId = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$",
        description="slug: lowercase letters, digits and '-', e.g. 'acme'",
    ),
]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)]
AccountSid = Annotated[str, Field(pattern=r"^AC[0-9a-fA-F]{32}$")]
ModelName = Annotated[str, Field(min_length=1, max_length=100)]
Secret = Annotated[SecretStr, Field(min_length=1, max_length=4096)]
JsmId = Annotated[str, Field(pattern=r"^\d{1,18}$", description="numeric JSM id, as a string")]
Language = Annotated[str, Field(pattern=r"^[a-z]{2}$", description="ISO 639-1 code, e.g. 'en'")]
JiraAuth = Literal["basic", "oauth2"]
Vocabulary = Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]], Field(max_length=200)]
VOCABULARY_HELP = (
    "product names and terms callers use, in order of importance; speech-to-text gets as many as "
    "fit its prompt (about 600 characters)"
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


if tuple(CredentialName) != db.SECRET_FIELDS:
    raise RuntimeError("CredentialName must list exactly db.SECRET_FIELDS, in order")


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
    openai_base_url: HttpUrlStr = DEFAULT_OPENAI_BASE_URL
    openai_api_key: Secret | None = None
    transcription_model: ModelName = DEFAULT_TRANSCRIPTION_MODEL
    vocabulary: Vocabulary = Field(default_factory=list, description=VOCABULARY_HELP)
    analysis_model: ModelName = DEFAULT_ANALYSIS_MODEL

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
    transcription_model: ModelName | None = None
    vocabulary: Vocabulary | None = Field(None, description=VOCABULARY_HELP)
    analysis_model: ModelName | None = None

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
            nullable = {"jira_email", "twilio_account_sid"}
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
    transcription_model: str
    vocabulary: list[str]
    analysis_model: str
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
    greeting: Annotated[str, Field(max_length=2000)] = DEFAULT_GREETING
    recording_notice: Annotated[str, Field(min_length=1, max_length=2000)] = db.DEFAULT_RECORDING_NOTICE
    voice: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")] = DEFAULT_VOICE
    max_recording_seconds: Annotated[int, Field(ge=5, le=3600)] = DEFAULT_MAX_RECORDING_SECONDS
    record_timeout_seconds: Annotated[int, Field(ge=1, le=60)] = Field(
        DEFAULT_RECORD_TIMEOUT_SECONDS,
        description="seconds of silence that end the recording (<Record timeout>)",
    )
    record_finish_on_key: Annotated[str, Field(pattern=r"^[0-9*#]{1,12}$")] = Field(
        DEFAULT_FINISH_ON_KEY,
        description="keys that end the recording (<Record finishOnKey>), e.g. '#' or '*#'",
    )
    sms_enabled: bool = True
    sms_from: E164 | None = Field(None, description="null: send from the line's own number")
    sms_messaging_service_sid: Annotated[str, Field(pattern=r"^MG[0-9a-fA-F]{32}$")] | None = Field(
        None, description="Twilio Messaging Service to send from; when set it wins over sms_from"
    )
    sms_template: Annotated[str, Field(min_length=1, max_length=1000), AfterValidator(_sms_template)] = (
        DEFAULT_SMS_TEMPLATE
    )
    phone_field_id: Annotated[str, Field(pattern=r"^customfield_\d{1,10}$")] | None = Field(
        None, description="null: the caller's number goes only to the issue property"
    )
    attach_recording: bool = False
    ticket_on_absent_recording: bool = Field(
        False, description="make a request for calls without a message (absent or failed recording)"
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
    created_at: datetime
    updated_at: datetime


class SeedLine(LineIn):
    number: E164


class SeedFile(_In):
    tenants: list[TenantCreate] = Field(default_factory=list)
    lines: list[SeedLine] = Field(default_factory=list)


class RotateResult(BaseModel):
    primary_kid: str
    reencrypted: int
