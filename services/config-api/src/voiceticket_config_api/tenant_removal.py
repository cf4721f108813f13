"""What removing a tenant does here, and what its owner must still do at the providers.

Deleting a tenant drops its lines (calls to its numbers are then answered as an unknown line), its
block list of callers (``block_list.py``) and its stored credentials, and destroys the data keys of all its calls (``vault.destroy_tenant_keys``):
every event of the tenant still queued or in flight, on every topic and in every dead letter, can no
longer be opened, so consumers drop it (counted, never dead-lettered) instead of working on it. What
the services keep per call (ledger rows without personal data) goes with their retention purge.
The credentials stay valid at the providers until their owner revokes them: these steps say how.
"""

from __future__ import annotations

REVOCATION_STEPS: tuple[str, ...] = (
    "Twilio: point the tenant's numbers' voice and messaging webhooks away from this installation "
    "(or release the numbers), then rotate the account's auth token (Console > Account > API keys & "
    "tokens), since a copy of it was stored here; delete recordings you do not keep.",
    "Atlassian: revoke the Jira API token the tenant gave (id.atlassian.com > Security > API tokens) "
    "or the OAuth 2.0 app's access, and remove the bot account from the service desk.",
    "OpenAI (or the OpenAI-compatible server): revoke the API key the tenant gave "
    "(platform.openai.com > API keys), so that nothing can spend on it any more.",
)
