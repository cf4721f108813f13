"""Twilio's Messages API over HTTPS."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.http import provider_client, raise_for_provider_status
from voiceticket_common.resources import AsyncResource
from voiceticket_common.twilio import TwilioAccount

from .ports import Sms, SmsReceipt, SmsRejected

# Twilio error codes that no retry can fix: opted out, invalid number, not a mobile number.
PERMANENT_CODES = {"21610": "recipient opted out", "21211": "invalid number", "21614": "not a mobile number"}


class AmbiguousSend(TransientError):
    """The request may have reached Twilio: never resend, the ledger keeps its claim."""


class TwilioSmsSender(AsyncResource):
    """``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with the tenant's basic auth."""

    def __init__(
        self,
        allowed_hosts: Sequence[str],
        api_base_url: str = "https://api.twilio.com",
        timeout: float = 30.0,
    ) -> None:
        self._client = provider_client("twilio", allowed_hosts, timeout=timeout)
        self._base = api_base_url.rstrip("/")

    async def send(self, account: TwilioAccount, sms: Sms) -> SmsReceipt:
        form = {"To": sms.to, "Body": sms.body}
        if sms.messaging_service_sid:
            form["MessagingServiceSid"] = sms.messaging_service_sid
        elif sms.from_number:
            form["From"] = sms.from_number
        else:
            raise PermanentError("an SMS needs a From number or a MessagingServiceSid")
        if sms.status_callback:
            form["StatusCallback"] = sms.status_callback
        try:
            response = await self._client.post(
                f"{self._base}/2010-04-01/Accounts/{account.account_sid}/Messages.json",
                data=form,
                auth=(account.account_sid, account.auth_token.get_secret_value()),
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise TransientError(f"twilio send sms failed: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:
            raise AmbiguousSend(f"twilio send sms outcome unknown: {type(exc).__name__}") from None
        if response.status_code >= 400:
            code = _error_code(response)
            if code in PERMANENT_CODES:
                raise SmsRejected(code, PERMANENT_CODES[code])
            raise_for_provider_status(response, "twilio", "send sms")
        body = response.json()
        segments = body.get("num_segments")
        return SmsReceipt(message_sid=str(body["sid"]), segments=int(segments) if segments else None)

    async def aclose(self) -> None:
        await self._client.aclose()


def _error_code(response: httpx.Response) -> str | None:
    try:
        code = response.json().get("code")
    except ValueError:
        return None
    return str(code) if code is not None else None
