"""The tenant's Jira site, from jira-writer's runtime view of config-api."""

from __future__ import annotations

from voiceticket_common.bus import PermanentError
from voiceticket_common.runtime_views import JiraWriterView

from .ports import JiraSite


def jira_site(config: JiraWriterView) -> JiraSite:
    """Basic auth (email + API token) by default; ``jira_auth: oauth2`` uses the OAuth access token.

    With OAuth 2.0 ``jira_base_url`` holds ``https://api.atlassian.com/ex/jira/<cloudId>``.
    """

    tenant = config.tenant
    limit = tenant.provider_concurrency.jira  # the most requests in flight to it (adapters.py)
    if tenant.jira_auth == "oauth2":
        return JiraSite(
            tenant.jira_base_url, "", config.jira_oauth_token(), "oauth2", config.tenant_id, limit
        )
    if tenant.jira_auth != "basic":
        raise PermanentError(f"tenant {config.tenant_id} has an unknown jira_auth {tenant.jira_auth!r}")
    return JiraSite(
        tenant.jira_base_url, tenant.jira_email, config.jira_api_token(), "basic", config.tenant_id, limit
    )
