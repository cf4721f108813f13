"""One demo tenant ("Acme") wired to the sandboxes: used by the demo, devstack and the tests."""

from __future__ import annotations

from typing import Any

import httpx

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "sandbox-twilio-auth-token-" + "7" * 8
SUPPORT_LINE = "+15005550006"
SMS_FROM = "+15005550001"
JIRA_EMAIL = "voiceticket-bot@acme.example"
JIRA_TOKEN = "sandbox-jira-api-token-" + "9" * 8
OPENAI_KEY = "sk-sandbox-" + "5" * 20
SERVICE_DESK_ID = "4"
PROJECT_KEY = "HELP"
REQUEST_TYPES = {
    "incident": "41",
    "service_request": "42",
    "question": "43",
    "complaint": "44",
    "other": "45",
}
_FIELDS = [
    {"fieldId": "summary", "name": "Summary", "required": True},
    {"fieldId": "description", "name": "Description", "required": False},
]


async def configure_sandboxes(twilio: str, openai: str, jira: str) -> None:
    """Register the demo tenant's Twilio account, OpenAI key, Jira user and service desk."""

    async with httpx.AsyncClient(timeout=10) as client:
        calls = [
            (f"{twilio}/_sandbox/accounts", {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}),
            (f"{jira}/_sandbox/credentials", {"email": JIRA_EMAIL, "api_token": JIRA_TOKEN}),
            (f"{openai}/_sandbox/api-keys", {"api_key": OPENAI_KEY}),
            (
                f"{jira}/_sandbox/servicedesks",
                {
                    "id": SERVICE_DESK_ID,
                    "project_key": PROJECT_KEY,
                    "request_types": [
                        {"id": rid, "name": name.replace("_", " ").title(), "fields": _FIELDS}
                        for name, rid in REQUEST_TYPES.items()
                    ],
                },
            ),
        ]
        for url, body in calls:
            (await client.post(url, json=body)).raise_for_status()


def seed(twilio: str, openai: str, jira: str) -> dict[str, Any]:
    """config-api seed: the tenant with sandbox endpoints and one support line."""

    del twilio  # recording URLs come from Twilio's callback; SMS base URL is a notifier setting
    return {
        "tenants": [
            {
                "id": "acme",
                "name": "Acme Corp",
                "jira_base_url": jira,
                "jira_email": JIRA_EMAIL,
                "jira_api_token": JIRA_TOKEN,
                "twilio_account_sid": ACCOUNT_SID,
                "twilio_auth_token": AUTH_TOKEN,
                "openai_base_url": f"{openai}/v1",
                "openai_api_key": OPENAI_KEY,
            }
        ],
        "lines": [
            {
                "number": SUPPORT_LINE,
                "tenant_id": "acme",
                "service_desk_id": SERVICE_DESK_ID,
                "request_type_id": REQUEST_TYPES["other"],
                "request_types": REQUEST_TYPES,
                "language_mode": "auto",
                "language": "en",
                "sms_enabled": True,
                "sms_from": SMS_FROM,
                "greeting": "Thank you for calling Acme support.",
            }
        ],
    }
