from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from voiceticket_common.call_context import DEVELOPMENT_KEY
from voiceticket_common.settings import ServiceSettings


class NotifierSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///.local/notifier.db"
    twilio_api_base_url: str = "https://api.twilio.com"
    twilio_timeout_seconds: float = 30.0
    public_base_url: str | None = None
    """Ingress's public base URL (the same ``VOICETICKET_PUBLIC_BASE_URL`` ingress has). When set,
    every SMS carries a StatusCallback to ``<public_base_url>/twilio/message-status`` and its
    delivery receipts become ``notification.delivery`` events; unset, no receipts are asked for."""
    callback_context_key: SecretStr = SecretStr(DEVELOPMENT_KEY)
    """ingress's Fernet key (``VOICETICKET_CALLBACK_CONTEXT_KEY``): seals the StatusCallback's
    context, and keys the hash under which opted-out numbers are remembered."""
    sms_max_segments: int = Field(default=2, ge=1, le=10)
    """Budget per SMS: the summary is shortened (never the request key) to stay within it."""
    opt_out_recheck_days: int = Field(default=30, ge=1)
    """A caller who opted out (21610) gets no SMS for this long; then one attempt is made again,
    because Twilio lifts the block when they text START (a still-blocked attempt is not billed)."""

    @model_validator(mode="after")
    def _real_key_in_production(self) -> NotifierSettings:
        if (
            self.environment == "production"
            and self.callback_context_key.get_secret_value() == DEVELOPMENT_KEY
        ):
            raise ValueError("VOICETICKET_CALLBACK_CONTEXT_KEY must be set in production")
        return self
