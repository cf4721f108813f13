from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from voiceticket_common.settings import CallbackContextSettings, require_lease_outlasts


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
    because Twilio lifts the block when they text START (a still-blocked attempt is not billed).
    Opt-out hashes older than this are no longer used: the scheduled purge deletes them."""
    message_retention_days: int = Field(default=30, ge=1)
    """How long a finished call's SMS ledger row (outcome, message SID) is kept; the scheduled
    purge deletes older ones (opt-out hashes go after ``opt_out_recheck_days``). Keep it longer
    than the dead-letter retention, so a replayed letter still finds that its SMS went out."""
    sms_lease_seconds: float = Field(default=60.0, gt=0)
    """How long one attempt holds a call's SMS claim. A concurrent delivery waits (Retry-After)
    until the holder is done or this has passed; a crashed attempt's claim is taken over after it
    (looking at Twilio's Messages list first if its send had started). Longer than
    ``twilio_timeout_seconds``; keep it well within the bus's retry budget (120 s)."""

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> Self:
        require_lease_outlasts(self, "sms_lease_seconds", "twilio_timeout_seconds")
        return self
