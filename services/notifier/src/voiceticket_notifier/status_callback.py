"""The StatusCallback URL each SMS carries, so its delivery receipts reach ingress.

Twilio's message status callback says which message and how it went, but not which call or
tenant; ingress needs the tenant's line to check the signature. So, as ingress does for the
recording callback, the context is sealed into ``ctx`` with the shared callback key (no phone
number in the URL), and the call's ``traceparent`` rides along as ``tp``: Twilio signs the full
URL, so neither can be forged and the receipt continues the call's trace.
"""

from __future__ import annotations

from urllib.parse import urlencode

from pydantic import SecretStr

from voiceticket_common.call_context import CallContext, CallContextSealer
from voiceticket_common.tracing import current_traceparent

PATH = "/twilio/message-status"


class MessageStatusCallback:
    def __init__(self, public_base_url: str, key: SecretStr) -> None:
        self._base = public_base_url.rstrip("/")
        self._sealer = CallContextSealer(key)

    def url(self, tenant_id: str, line_number: str, call_sid: str) -> str:
        params = {"ctx": self._sealer.seal(CallContext(tenant_id, line_number, call_sid=call_sid))}
        traceparent = current_traceparent()
        if traceparent:
            params["tp"] = traceparent
        return f"{self._base}{PATH}?{urlencode(params)}"
