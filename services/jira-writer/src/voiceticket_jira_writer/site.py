"""The tenant's Jira site and Twilio account, from jira-writer's runtime view of config-api."""

from __future__ import annotations

from voiceticket_common.bus import PermanentError
from voiceticket_common.config_client import LineConfig

from .ports import JiraSite, TwilioAccount


def jira_site(config: LineConfig) -> JiraSite:
    """Basic auth (email + API token) by default; ``jira_auth: oauth2`` uses the OAuth access token.

    With OAuth 2.0 ``jira_base_url`` holds ``https://api.atlassian.com/ex/jira/<cloudId>``.
    """

    tenant = config.tenant
    base_url = str(tenant.get("jira_base_url") or "")
    auth = str(tenant.get("jira_auth") or "basic")
    if auth == "oauth2":
        return JiraSite(base_url, "", config.secret("jira_oauth_token"), "oauth2")
    if auth != "basic":
        raise PermanentError(f"tenant {config.tenant_id} has an unknown jira_auth {auth!r}")
    return JiraSite(base_url, str(tenant.get("jira_email") or ""), config.secret("jira_api_token"))


def twilio_account(config: LineConfig) -> TwilioAccount | None:
    """The account whose recordings jira-writer may download, or None when none is configured."""

    sid = config.tenant.get("twilio_account_sid")
    token = config.tenant.get("twilio_auth_token")
    if not sid or not token:
        return None
    return TwilioAccount(str(sid), config.secret("twilio_auth_token"))
