"""Twilio's Messages API over HTTPS."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.http import provider_client, raise_for_provider_status
from voiceticket_common.resources import AsyncResource
from voiceticket_common.twilio import TwilioAccount

from .ports import Sms, SmsReceipt, SmsRejected

# Twilio error codes that no retry can fix: opted out, invalid number, not a mobile number.
PERMANENT_CODES = {"21610": "recipient opted out", "21211": "invalid number", "21614": "not a mobile number"}
CLOCK_SKEW = timedelta(minutes=5)
"""How much earlier than our ``since`` Twilio's ``date_created`` of an earlier attempt's SMS may be
(its clock against ours, and its whole seconds)."""
LIST_PAGE_SIZE = 50
MAX_LIST_PAGES = 20


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

    async def find_sent(
        self, account: TwilioAccount, sms: Sms, marker: str, since: datetime
    ) -> SmsReceipt | None:
        """``GET .../Messages.json?To=&From=`` (the spec's filters; ``DateSent`` is not used, as a
        queued message has none yet), newest first, until messages predate ``since``."""
        params: dict[str, str | int] = {"To": sms.to, "PageSize": LIST_PAGE_SIZE}
        if sms.from_number and not sms.messaging_service_sid:
            params["From"] = sms.from_number
        url: str | None = f"{self._base}/2010-04-01/Accounts/{account.account_sid}/Messages.json"
        earliest = since - CLOCK_SKEW
        for _ in range(MAX_LIST_PAGES):
            if url is None:
                return None
            page = await self._list(account, url, params)
            messages: list[dict[str, Any]] = page.get("messages") or []
            older = False
            for message in messages:
                created = _created(message)
                if created is not None and created < earliest:
                    older = True
                    continue
                if marker in str(message.get("body") or "") and _ours(message, sms):
                    segments = message.get("num_segments")
                    return SmsReceipt(str(message["sid"]), int(segments) if segments else None)
            next_uri = page.get("next_page_uri")
            if older or not messages or not next_uri:
                return None
            url, params = f"{self._base}{next_uri}", {}
        raise PermanentError("twilio message list too long to tell whether this call's sms was sent")

    async def _list(self, account: TwilioAccount, url: str, params: dict[str, str | int]) -> dict[str, Any]:
        try:
            response = await self._client.get(
                url, params=params, auth=(account.account_sid, account.auth_token.get_secret_value())
            )
        except httpx.HTTPError as exc:
            raise TransientError(f"twilio list messages failed: {type(exc).__name__}") from None
        raise_for_provider_status(response, "twilio", "list messages")
        body: dict[str, Any] = response.json()
        return body

    async def aclose(self) -> None:
        await self._client.aclose()


def _error_code(response: httpx.Response) -> str | None:
    try:
        code = response.json().get("code")
    except ValueError:
        return None
    return str(code) if code is not None else None


def _created(message: dict[str, Any]) -> datetime | None:
    try:
        created = parsedate_to_datetime(str(message.get("date_created")))
    except (TypeError, ValueError):
        return None
    return created if created.tzinfo is not None else created.replace(tzinfo=UTC)


def _ours(message: dict[str, Any], sms: Sms) -> bool:
    if sms.messaging_service_sid:
        return message.get("messaging_service_sid") == sms.messaging_service_sid
    return message.get("from") == sms.from_number
