"""How handlers tell the bus what to do with a failure."""

from __future__ import annotations


class TransientError(Exception):
    """Worth retrying: timeouts, 429, 5xx. ``retry_after`` (seconds) is honoured when given."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(Exception):
    """Retrying cannot help (validation error, bad credentials): dead-letter at once."""
