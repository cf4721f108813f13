"""What the analyzer's tests share: a model's valid answer for the VPN transcript."""

from __future__ import annotations

GOOD = {
    "summary": "VPN down for the whole office",
    "description": "The caller reports that the VPN is down.",
    "intent": "incident",
    "entities": [{"type": "account_number", "value": "12345678"}],
    "priority": "high",
    "sentiment": "negative",
    "language": "en",
}
"""A valid analysis, as the model answers it."""
