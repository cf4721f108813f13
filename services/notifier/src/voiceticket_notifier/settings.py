from __future__ import annotations

from voiceticket_common.settings import ServiceSettings


class NotifierSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///.local/notifier.db"
    twilio_api_base_url: str = "https://api.twilio.com"
    message_status_callback_url: str | None = None
    """Ingress's public ``/twilio/message-status`` URL, if delivery receipts are wanted."""
    twilio_timeout_seconds: float = 30.0
