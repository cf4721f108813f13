from __future__ import annotations

from pydantic import SecretStr, model_validator

from voiceticket_common.settings import ServiceSettings

_DEV_CONTEXT_KEY = "ZGV2ZWxvcG1lbnQtb25seS1jYWxsYmFjay1rZXktMDA="  # Fernet key, development only


class IngressSettings(ServiceSettings):
    host: str = "127.0.0.1"
    port: int = 8080
    public_base_url: str = "http://127.0.0.1:8080"
    """The URL Twilio calls, as Twilio sees it (scheme, host, port): signatures are computed on it."""
    callback_context_key: SecretStr = SecretStr(_DEV_CONTEXT_KEY)
    """Fernet key sealing the call context carried in callback URLs; shared by all ingress replicas."""
    record_timeout_seconds: int = 5
    record_finish_on_key: str = "#"

    @model_validator(mode="after")
    def _real_key_in_production(self) -> IngressSettings:
        if (
            self.environment == "production"
            and self.callback_context_key.get_secret_value() == _DEV_CONTEXT_KEY
        ):
            raise ValueError("VOICETICKET_CALLBACK_CONTEXT_KEY must be set in production")
        return self
