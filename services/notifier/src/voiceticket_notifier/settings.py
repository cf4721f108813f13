from __future__ import annotations

from pydantic import Field

from voiceticket_common.settings import CallbackContextSettings


class NotifierSettings(CallbackContextSettings):
    database_url: str = "sqlite+aiosqlite:///.local/notifier.db"
    twilio_api_base_url: str = "https://api.twilio.com"
    twilio_timeout_seconds: float = 30.0
    public_base_url: str | None = None
    """Ingress's public base URL (the same ``VOICETICKET_PUBLIC_BASE_URL`` ingress has). When set,
    every SMS carries a StatusCallback to ``<public_base_url>/twilio/message-status`` and its
    delivery receipts become ``notification.delivery`` events; unset, no receipts are asked for."""
    sms_max_segments: int = Field(default=2, ge=1, le=10)
    """Budget per SMS: the summary is shortened (never the request key) to stay within it."""
    opt_out_recheck_days: int = Field(default=30, ge=1)
    """A caller who opted out (21610) gets no SMS for this long; then one attempt is made again,
    because Twilio lifts the block when they text START (a still-blocked attempt is not billed)."""
