"""Twilio values every service shares: the account a tenant's calls, recordings and SMS belong to."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr


@dataclass(frozen=True)
class TwilioAccount:
    """A Twilio account SID and its auth token (basic auth for the REST API, the webhook signing key)."""

    account_sid: str
    auth_token: SecretStr
